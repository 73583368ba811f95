import type { AddressInfo } from 'node:net';
import { createSecureContext, type Server as TlsServer } from 'node:tls';
import Fastify, { type FastifyInstance } from 'fastify';
import { tlsContextOptions } from '../../policy/tls-profile';
import { portalServerOptions, registerPortal } from './app';
import type { PortalWebDeps } from './deps';

/** The HTTPS portal listener on config.portal.host/port, with inbound's NIST TLS profile (TLS 1.2+, approved suites and groups). */
export interface PortalServer {
  url: string;
  port: number;
  /** Serves this certificate under this profile to connections accepted from now on; open ones keep theirs. Check it with portalTlsOptions first. */
  setTls(options: ReturnType<typeof portalTlsOptions>): void;
  close(): Promise<void>;
}

/** The portal's HTTPS options (the profile, certificate and key); throws, naming the keys, when they do not make a secure context. */
export function portalTlsOptions(profile: PortalWebDeps['profile'], tls: PortalWebDeps['tls']) {
  const options = { ...tlsContextOptions(profile), key: tls.key, cert: tls.cert };
  try {
    createSecureContext(options);
  } catch (err) {
    throw new Error(`portal.cert/portal.key: cannot serve this certificate and key: ${(err as Error).message}`, { cause: err });
  }
  return options;
}

export async function startPortalServer(deps: PortalWebDeps): Promise<PortalServer> {
  const https = { ...tlsContextOptions(deps.profile), key: deps.tls.key, cert: deps.tls.cert };
  const options = { ...portalServerOptions(deps), https } as Parameters<typeof Fastify>[0];
  const app = Fastify(options) as unknown as FastifyInstance;
  await registerPortal(app, deps);
  const { host, port } = deps.config.portal;
  await app.listen({ host, port });
  const bound = (app.server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `https://${urlHost}:${bound}`,
    port: bound,
    setTls: (options) => (app.server as unknown as TlsServer).setSecureContext(options),
    close: () => app.close(),
  };
}
