import { startWorld, type MxTlsBehaviour, type World, type WorldSpec } from '../test/support/world';

/**
 * The destinations of the benchmark: `count` domains bench-1.test, bench-2.test, ... each with one
 * MX host on its own loopback address, their TLS behaviours cycling through `mix` (TLS 1.3 only,
 * TLS 1.2 AES-GCM only, ...). Served by the test world's DNS server, certificates from its test CA.
 */
export interface SinkWorld {
  world: World;
  domains: string[];
  /** domain -> `ip:port` of its MX (what Postfix's transport map points at). */
  nextHops: Record<string, string>;
  /** Messages received by every sink so far. */
  arrivals(): number;
}

export function sinkDomains(count: number): string[] {
  return Array.from({ length: count }, (_, index) => `bench-${index + 1}.test`);
}

export async function startSinkWorld(count: number, mix: MxTlsBehaviour[]): Promise<SinkWorld> {
  const domains = sinkDomains(count);
  const spec: WorldSpec = {};
  domains.forEach((domain, index) => {
    spec[domain] = { mx: [{ host: `mx1.${domain}`, tls: mix[index % mix.length]! }] };
  });
  const world = await startWorld(spec);
  const nextHops = Object.fromEntries(domains.map((domain) => [domain, `${world.addressOf(`mx1.${domain}`)}:${world.smtpPort}`]));
  return {
    world,
    domains,
    nextHops,
    arrivals: () => world.mxServers.reduce((sum, server) => sum + server.received.length, 0),
  };
}
