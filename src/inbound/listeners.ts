import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import type { Config, ListenerConfig } from '../config/schema';
import type { Logger } from '../log/logger';
import { tlsContextOptions, type TlsProfile } from '../policy/tls-profile';
import type { AdaptedServerOptions } from './smtp-server-adaptations';

/**
 * The smtp-server listeners: one SMTPServer per configured listener, its TLS and limit options,
 * binding (in config order), and the ordered stop (421 to every session once in-flight messages
 * are stored).
 */

export interface BoundListener {
  name: string;
  host: string;
  port: number;
}

export interface InboundHandle {
  /** The addresses actually bound (a configured port 0 shows the port the system chose). */
  listeners: BoundListener[];
  /** True while every listener is bound and close() has not been called (readiness). */
  listening(): boolean;
  /** Stops accepting, lets messages being stored finish (bounded), then closes every session. */
  close(): Promise<void>;
}

/** How long a stop waits for messages that are being stored. */
export const SHUTDOWN_GRACE_MS = 15_000;

/** The session callbacks of one listener (Sealgate's rules); everything else comes from the config. */
export type SessionHandlers = Required<Pick<SMTPServerOptions, 'onConnect' | 'onSecure' | 'onAuth' | 'onMailFrom' | 'onRcptTo' | 'onData' | 'onClose'>> & Required<AdaptedServerOptions>;

export interface ListenerSetup {
  config: Pick<Config, 'hostname' | 'limits'>;
  profile: TlsProfile;
  tls: { key: string | Buffer; cert: string | Buffer };
}

export function smtpServerOptions(listener: ListenerConfig, setup: ListenerSetup, handlers: SessionHandlers): SMTPServerOptions & AdaptedServerOptions {
  const { config } = setup;
  return {
    ...tlsContextOptions(setup.profile),
    key: setup.tls.key,
    cert: setup.tls.cert,
    secure: listener.tls === 'implicit',
    name: config.hostname,
    banner: 'Sealgate',
    size: config.limits.maxMessageSize,
    // The DATA guard answers 552 itself; smtp-server still refuses MAIL with a SIZE over the limit.
    rejectOversized: false,
    authMethods: ['PLAIN', 'LOGIN'],
    // AUTH required is enforced at MAIL (after the STARTTLS check, so the client hears about TLS first).
    authOptional: true,
    allowInsecureAuth: false,
    hideENHANCEDSTATUSCODES: false,
    hideDSN: false,
    hideREQUIRETLS: false,
    // The Received header names the client by IP: no PTR lookup delays the greeting.
    disableReverseLookup: true,
    maxClients: config.limits.maxConnections,
    socketTimeout: config.limits.socketTimeout,
    closeTimeout: SHUTDOWN_GRACE_MS + 5_000,
    maxRecipients: config.limits.maxRecipients,
    maxAllowedUnauthenticatedCommands: false,
    logger: false,
    disabledCommands: listener.tls === 'implicit' ? ['STARTTLS'] : [],
    ...handlers,
  };
}

export function createListener(listener: ListenerConfig, setup: ListenerSetup, handlers: SessionHandlers, log: Logger): SMTPServer {
  const server = new SMTPServer(smtpServerOptions(listener, setup, handlers));
  // A failed handshake or a reset socket is emitted here; without a listener it would crash the process.
  server.on('error', (err: Error & { code?: string; remoteAddress?: string; meta?: { remoteAddress?: string } }) => {
    log.info({ event: 'connection-error', listener: listener.name, ip: err.remoteAddress ?? err.meta?.remoteAddress, code: err.code, err: err.message }, 'SMTP connection error');
  });
  return server;
}

/** Binds a listener; resolves with the port actually bound. */
export function bind(server: SMTPServer, listener: ListenerConfig): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.server.once('error', onError);
    server.listen(listener.port, listener.host, () => {
      server.server.off('error', onError);
      const address = server.server.address();
      resolve(typeof address === 'object' && address ? address.port : listener.port);
    });
  });
}

/** Stops accepting, waits (bounded) for `inFlight` messages to be stored, then sends 421 to every session left. */
export async function stopListeners(servers: readonly SMTPServer[], inFlight: ReadonlySet<Promise<void>>): Promise<void> {
  const stopped = servers.map(
    (server) =>
      new Promise<void>((resolve) => {
        // smtp-server answers later commands with 421 and force-closes after closeTimeout.
        server.close(() => resolve());
      }),
  );
  if (inFlight.size > 0) {
    await withTimeout(Promise.allSettled([...inFlight]), SHUTDOWN_GRACE_MS);
  }
  for (const server of servers) {
    for (const connection of server.connections) {
      connection.send(421, '4.3.2 Service shutting down');
    }
  }
  await withTimeout(Promise.all(stopped), 5_000);
}

/** Sends a 421 to one session (which makes smtp-server close the connection). */
export function dropSession(servers: readonly SMTPServer[], sessionId: string, text: string): void {
  for (const server of servers) {
    for (const connection of server.connections) {
      if (connection.id === sessionId) {
        connection.send(421, text);
        return;
      }
    }
  }
}

async function withTimeout(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
