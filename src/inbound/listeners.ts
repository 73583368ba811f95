import type { Socket } from 'node:net';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import type { UserDirectory } from '../auth/users';
import type { Config, ListenerConfig } from '../config/schema';
import type { Logger } from '../log/logger';
import { tlsContextOptions, type TlsProfile } from '../policy/tls-profile';
import type { SmtpReplyError } from './replies';
import type { AdaptedServerOptions } from './smtp-server-adaptations';

/**
 * The smtp-server listeners: one SMTPServer per configured listener, its TLS and limit options,
 * connection accounting from TCP accept (before smtp-server sees the socket, so before any TLS
 * handshake) with the implicit-TLS handshake deadline, the idle timeout re-armed as the load
 * changes, binding (in config order), and the ordered stop (421 to every session once in-flight
 * messages are stored).
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
  /** Open connections per listener name (every configured listener, 0 when idle). */
  connections(): Record<string, number>;
  /** Stops accepting, lets messages being stored finish (bounded), then closes every session. */
  close(): Promise<void>;
  /**
   * Sessions that connect from now on run under `next` (a reload): its limits, TLS profile, certificate
   * and users. Sessions already open finish under what they started with. Must not fail: check the
   * certificate with listenerTlsOptions first.
   */
  reconfigure(next: InboundRuntime): void;
}

/** What one SMTP session runs under, taken when it connects and kept until it ends. */
export interface InboundRuntime {
  config: Config;
  profile: TlsProfile;
  users: UserDirectory;
  tls: { key: string | Buffer; cert: string | Buffer };
}

/** How long a socket refused at accept may stay open for its 421 to be delivered. */
const REFUSAL_LINGER_MS = 1_000;

/** How long a stop waits for messages that are being stored. */
export const SHUTDOWN_GRACE_MS = 15_000;

/** The session callbacks of one listener (Sealgate's rules); everything else comes from the config. */
export type SessionHandlers = Required<Pick<SMTPServerOptions, 'onConnect' | 'onSecure' | 'onAuth' | 'onMailFrom' | 'onRcptTo' | 'onData' | 'onClose'>> &
  Required<Omit<AdaptedServerOptions, 'sealgateCommandTimeout' | 'sealgateHandshakeTimeout'>>;

/** What the listeners report at TCP accept (the connection guard). */
export interface AcceptHooks {
  /** A connection was accepted: returns the 421 if a cap is broken, else undefined (counted). */
  accept(ip: string, port: number): SmtpReplyError | undefined;
  /** The accepted socket closed. */
  closed(ip: string, port: number): void;
  /** An implicit-TLS client did not finish its handshake within limits.tlsHandshakeTimeout. */
  handshakeTimedOut(ip: string): void;
}

export interface ListenerSetup {
  config: Pick<Config, 'hostname' | 'limits'>;
  profile: TlsProfile;
  tls: { key: string | Buffer; cert: string | Buffer };
}

/**
 * The listeners' TLS options: the profile's, the certificate and its key. Throws (naming the key) when
 * they do not make a secure context, e.g. a key that does not belong to the certificate.
 */
export function listenerTlsOptions(profile: TlsProfile, tls: ListenerSetup['tls']): SecureContextOptions {
  const options = { ...tlsContextOptions(profile), key: tls.key, cert: tls.cert };
  try {
    createSecureContext(options);
  } catch (err) {
    throw new Error(`tls.cert/tls.key: cannot serve this certificate and key: ${(err as Error).message}`, { cause: err });
  }
  return options;
}

/**
 * Applies a reloaded config to running listeners, for connections accepted from now on: the TLS context
 * (implicit TLS and STARTTLS both build their sockets from it; open sessions keep theirs) and the limits
 * smtp-server itself reads (SIZE, recipients per message, its own client cap, the command deadlines).
 */
export function reconfigureListeners(servers: readonly SMTPServer[], config: Pick<Config, 'limits'>, tlsOptions: SecureContextOptions): void {
  for (const server of servers) {
    server.updateSecureContext(tlsOptions);
    const options = server.options as SMTPServerOptions & AdaptedServerOptions;
    options.size = config.limits.maxMessageSize;
    options.maxRecipients = config.limits.maxRecipients;
    options.maxClients = config.limits.maxConnections;
    options.sealgateCommandTimeout = config.limits.commandTimeout;
    options.sealgateHandshakeTimeout = config.limits.tlsHandshakeTimeout;
  }
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
    sealgateCommandTimeout: config.limits.commandTimeout,
    sealgateHandshakeTimeout: config.limits.tlsHandshakeTimeout,
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

/**
 * Puts the accept hooks in front of smtp-server's own connection handler, so every socket is
 * counted (and one over a cap refused) when it is accepted. smtp-server with `secure: true` only
 * calls onConnect after the TLS handshake; a client that never finishes it would otherwise hold a
 * socket outside every cap. An implicit-TLS socket over a cap is closed at once (no SMTP reply is
 * possible before the handshake); a plaintext one gets the 421 smtp-server would send for a refused
 * onConnect (the same line), without ever taking one of smtp-server's own maxClients places.
 */
export function guardAccept(server: SMTPServer, listener: ListenerConfig, hooks: AcceptHooks, handshakeTimeout: () => number): void {
  const net = server.server;
  const handlers = net.listeners('connection') as Array<(socket: Socket) => void>;
  net.removeAllListeners('connection');
  const implicit = listener.tls === 'implicit';
  net.on('connection', (socket: Socket) => {
    const ip = socket.remoteAddress ?? '';
    const port = socket.remotePort ?? 0;
    const refused = hooks.accept(ip, port);
    let handshake: NodeJS.Timeout | undefined;
    socket.once('close', () => {
      clearTimeout(handshake);
      hooks.closed(ip, port);
    });
    if (refused !== undefined) {
      socket.on('error', () => undefined);
      if (implicit) {
        socket.destroy();
        return;
      }
      socket.end(`${refused.responseCode} ${refused.message}\r\n`);
      // A client that never closes its side does not keep the socket.
      setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
      return;
    }
    const handshakeMs = handshakeTimeout();
    if (implicit && handshakeMs > 0) {
      handshake = setTimeout(() => {
        // smtp-server keeps a socket in _pendingSockets (mapped to the TLS socket on top of it)
        // until the handshake is done and the session starts.
        const top = server._pendingSockets.get(socket);
        if (top === undefined) return;
        hooks.handshakeTimedOut(ip);
        // Destroyed from the top: tearing the TLS wrap down from below mid-handshake crashes Node.
        top.destroy();
      }, handshakeMs);
      handshake.unref();
    }
    for (const handler of handlers) handler.call(net, socket);
  });
}

/** Re-arms the idle timeout of every open session (and the default for new ones) with `ms`. */
export function applyIdleTimeout(servers: readonly SMTPServer[], ms: number): void {
  for (const server of servers) {
    server.options.socketTimeout = ms;
    for (const connection of server.connections) {
      const socket = connection._socket;
      // Without a callback setTimeout only changes the delay: smtp-server's listener stays armed.
      if (!connection._upgrading && !socket.destroyed && (socket.timeout ?? 0) > 0) socket.setTimeout(ms);
    }
  }
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
