import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { tlsContextOptions } from '../../policy/tls-profile';
import { portalServerOptions, registerPortal } from './app';
import type { PortalWebDeps } from './deps';

/** The HTTPS portal listener on config.portal.host/port, with inbound's NIST TLS profile (TLS 1.2+, approved suites and groups). */
export async function startPortalServer(deps: PortalWebDeps): Promise<{ url: string; port: number; close(): Promise<void> }> {
  const https = { ...tlsContextOptions(deps.profile), key: deps.tls.key, cert: deps.tls.cert };
  const options = { ...portalServerOptions(deps), https } as Parameters<typeof Fastify>[0];
  const app = Fastify(options) as unknown as FastifyInstance;
  await registerPortal(app, deps);
  const { host, port } = deps.config.portal;
  await app.listen({ host, port });
  const bound = (app.server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return { url: `https://${urlHost}:${bound}`, port: bound, close: () => app.close() };
}
