import type { BlockList } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { SMTPServer, SMTPServerAddress, SMTPServerAuthentication, SMTPServerAuthenticationResponse, SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import type { AuthenticatedUser, UserDirectory } from '../auth/users';
import { networkList, type Config, type ListenerConfig } from '../config/schema';
import type { Logger } from '../log/logger';
import { checkNegotiated, type TlsProfile } from '../policy/tls-profile';
import type { Store } from '../store/types';
import { AuthThrottle } from './auth-throttle';
import { authenticate } from './authentication';
import { ConnectionGuard, type DeadlineKind } from './connections';
import { newMessage, receiveMessage } from './data-pipeline';
import { DiskSpaceCheck } from './disk-space';
import {
  applyIdleTimeout,
  bind,
  createListener,
  dropSession,
  guardAccept,
  listenerTlsOptions,
  reconfigureListeners,
  stopListeners,
  type BoundListener,
  type InboundHandle,
  type InboundRuntime,
  type ListenerSetup,
  type SessionHandlers,
} from './listeners';
import { inNetworks } from './networks';
import { noopInboundObserver, type InboundObserver } from './observer';
import { buildReceivedHeader } from './received-header';
import { reply } from './replies';
import { checkMailFrom, checkRcptTo, DISK_LOW, requireTlsParameterRefusal, sourceRouteRefusal } from './session-rules';
import { applySmtpServerAdaptations } from './smtp-server-adaptations';

export type { BoundListener, InboundHandle, InboundRuntime } from './listeners';
export { listenerTlsOptions } from './listeners';
export type { InboundObserver } from './observer';

/**
 * Inbound submission: one smtp-server per configured listener (listeners.ts), wired to Sealgate's
 * rules: connection caps and the penalty box (connections.ts), TLS checked against the profile,
 * AUTH (authentication.ts), the MAIL/RCPT rules (session-rules.ts), and DATA streamed into the
 * store with a `250` only once the store has the message durably (data-pipeline.ts).
 */

export interface InboundOptions {
  config: Config;
  /** Inbound only adds messages (and checks free disk space for the file backend). */
  store: Pick<Store, 'kind' | 'enqueue'>;
  logger: Logger;
  profile: TlsProfile;
  users: UserDirectory;
  tls: { key: string | Buffer; cert: string | Buffer };
  /** Called after a message is durably queued (the delivery scheduler uses it to start at once). */
  onQueued?: (queueId: string) => void;
  /** Told about accepted and refused traffic (relay.ts wires it to the Prometheus metrics). */
  observer?: InboundObserver;
}

export async function startInbound(opts: InboundOptions): Promise<InboundHandle> {
  applySmtpServerAdaptations();
  const inbound = new Inbound(opts);
  try {
    await inbound.listen();
  } catch (err) {
    await inbound.close();
    throw err;
  }
  return { listeners: inbound.bound, listening: () => inbound.listening, connections: () => inbound.connections(), close: () => inbound.close(), reconfigure: (next) => inbound.reconfigure(next) };
}

class Inbound {
  readonly bound: BoundListener[] = [];
  private readonly servers: SMTPServer[] = [];
  private readonly guard: ConnectionGuard;
  private readonly authThrottle: AuthThrottle;
  private readonly disk: DiskSpaceCheck | undefined;
  private readonly observer: InboundObserver;
  private readonly inFlight = new Set<Promise<void>>();
  private closing: Promise<void> | undefined;
  private readonly log: Logger;
  /** What new sessions start under; each open session keeps the one it started with (see runtimeOf). */
  private runtime: InboundRuntime;
  private readonly sessionRuntimes = new Map<string, InboundRuntime>();

  constructor(private readonly opts: InboundOptions) {
    this.runtime = { config: opts.config, profile: opts.profile, users: opts.users, tls: opts.tls };
    const { limits, queue } = opts.config;
    this.log = opts.logger.child({ component: 'inbound' });
    this.observer = opts.observer ?? noopInboundObserver;
    this.guard = new ConnectionGuard(limits, opts.config.auth.maxFailures, this.observer, this.log);
    this.guard.onIdleTimeoutChange((ms) => applyIdleTimeout(this.servers, ms));
    const { maxFailuresPerIp, failureWindow, penaltyTime, failureDelay, maxFailureDelay } = opts.config.auth;
    this.authThrottle = new AuthThrottle({ maxFailures: maxFailuresPerIp, window: failureWindow, penaltyTime, baseDelay: failureDelay, maxDelay: maxFailureDelay });
    this.disk = opts.store.kind === 'file' || opts.store.kind === 'lmdb' ? new DiskSpaceCheck(queue.path, limits.minFreeDisk) : undefined;
  }

  async listen(): Promise<void> {
    const setup: ListenerSetup = { config: this.opts.config, profile: this.opts.profile, tls: this.opts.tls };
    for (const listener of this.opts.config.listeners) {
      const server = createListener(listener, setup, this.handlers(listener), this.log);
      guardAccept(server, listener, this.guard.acceptHooks(listener), () => this.runtime.config.limits.tlsHandshakeTimeout);
      this.servers.push(server);
      const port = await bind(server, listener);
      this.bound.push({ name: listener.name, host: listener.host, port });
      this.log.info({ event: 'listener-started', listener: listener.name, host: listener.host, port, tls: listener.tls, auth: listener.auth }, 'SMTP listener started');
    }
  }

  reconfigure(next: InboundRuntime): void {
    const { limits, auth } = next.config;
    this.guard.configure(limits, auth.maxFailures);
    this.authThrottle.configure({ maxFailures: auth.maxFailuresPerIp, window: auth.failureWindow, penaltyTime: auth.penaltyTime, baseDelay: auth.failureDelay, maxDelay: auth.maxFailureDelay });
    reconfigureListeners(this.servers, next.config, listenerTlsOptions(next.profile, next.tls));
    this.runtime = next;
  }

  /** The runtime a session started under: taken at its first callback, dropped when it closes. */
  private runtimeOf(session: SMTPServerSession): InboundRuntime {
    let runtime = this.sessionRuntimes.get(session.id);
    if (!runtime) {
      runtime = this.runtime;
      this.sessionRuntimes.set(session.id, runtime);
    }
    return runtime;
  }

  connections(): Record<string, number> {
    const open = this.guard.openConnections();
    return Object.fromEntries(this.runtime.config.listeners.map((listener) => [listener.name, open.get(listener.name) ?? 0]));
  }

  get listening(): boolean {
    return this.closing === undefined && this.servers.every((server) => server.server.listening);
  }

  close(): Promise<void> {
    this.closing ??= stopListeners(this.servers, this.inFlight).then(() => this.guard.clearDeadlines());
    return this.closing;
  }

  private handlers(listener: ListenerConfig): SessionHandlers {
    const trusted = networkList(listener.trustedNetworks);
    return {
      onConnect: (session, callback) => this.onConnect(listener, trusted, session, callback),
      onSecure: (socket, session, callback) => this.onSecure(socket, session, callback),
      onAuth: (auth, session, callback) => void this.onAuth(auth, session, callback),
      onMailFrom: (address, session, callback) => void this.onMailFrom(address, session, callback),
      onRcptTo: (address, session, callback) => this.onRcptTo(trusted, address, session, callback),
      onData: (stream, session, callback) => this.trackInFlight(this.onData(stream, session, callback)),
      onClose: (session) => {
        this.sessionRuntimes.delete(session.id);
        this.guard.release(session.id);
      },
      sealgateOnCommandStart: (session) => this.guard.commandStarted(session.id),
      sealgateOnTimeout: (reason, session, ip) =>
        this.guard.deadlineMissed(reason, listener.name, ip, reason === 'command-timeout' ? this.runtimeOf(session).config.limits.commandTimeout : this.runtime.config.limits.tlsHandshakeTimeout),
      sealgateOnProtocolError: (code, text, session) => this.guard.protocolError(session.id, code, text, userOf(session)?.name),
      sealgateInspectCommand: (command, line, session) => {
        const refusal = sourceRouteRefusal(line) ?? (command === 'MAIL' ? requireTlsParameterRefusal(line, session.secure) : null);
        if (!refusal) return undefined;
        const state = this.guard.session(session.id);
        const err = state ? this.guard.refuse(state, command, refusal) : reply(refusal.code, refusal.text);
        return { code: err.responseCode, message: err.message };
      },
    };
  }

  private trackInFlight(work: Promise<void>): void {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  private drop(sessionId: string, text: string): void {
    dropSession(this.servers, sessionId, text);
  }

  // ---- session lifecycle ----

  private onConnect(listener: ListenerConfig, trusted: BlockList, session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const ip = session.remoteAddress;
    const refused = this.guard.admit(listener, trusted, session.id, ip, (kind) => this.onSessionDeadline(session.id, kind), session.remotePort);
    if (refused) return callback(refused);
    this.runtimeOf(session);
    this.log.debug({ event: 'connection', listener: listener.name, ip, session: session.id }, 'client connected');
    callback();
  }

  private onSecure(socket: unknown, session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const state = this.guard.session(session.id);
    const tlsSocket = socket as TLSSocket;
    const cipher = tlsSocket.getCipher?.() as { standardName?: string; name?: string } | undefined;
    const facts = { protocol: tlsSocket.getProtocol?.() ?? 'unknown', cipher: cipher?.standardName ?? cipher?.name ?? 'unknown' };
    if (state) state.tls = facts;
    this.observer.tlsEstablished(facts);
    // The secure context already limits what can be negotiated; this is the second line of defence.
    const check = checkNegotiated(tlsSocket, this.runtimeOf(session).profile);
    if (!check.compliant) {
      this.log.warn({ event: 'tls-noncompliant', ip: session.remoteAddress, problems: check.problems, ...facts }, 'inbound TLS session outside the profile: closing');
      this.observer.connectionRefused('tls-noncompliant');
      callback(reply(421, '4.7.0 TLS session does not meet the security policy'));
      return;
    }
    this.log.debug({ event: 'tls', ip: session.remoteAddress, session: session.id, ...facts }, 'TLS established');
    callback();
  }

  private onSessionDeadline(sessionId: string, kind: DeadlineKind): void {
    const state = this.guard.session(sessionId);
    if (!state) return;
    if (kind === 'first-command') {
      this.guard.deadlineMissed('first-command-timeout', state.listener.name, state.ip, state.firstCommandTimeout ?? 0);
      this.drop(sessionId, '4.4.2 No command received in time, closing connection');
      return;
    }
    if (state.storing) {
      state.expired = true;
      return;
    }
    this.log.info({ event: 'session-deadline', ip: state.ip, listener: state.listener.name, session: sessionId }, 'session time limit reached');
    this.drop(sessionId, '4.4.2 Session time limit exceeded, closing connection');
  }

  // ---- commands ----

  private async onAuth(auth: SMTPServerAuthentication, session: SMTPServerSession, callback: (err: Error | null | undefined, response?: SMTPServerAuthenticationResponse) => void): Promise<void> {
    const state = this.guard.session(session.id);
    if (!state) return callback(reply(421, '4.3.0 Session not registered'));
    const answer = await authenticate({ users: this.runtimeOf(session).users, guard: this.guard, throttle: this.authThrottle, observer: this.observer, log: this.log }, state, auth);
    if (answer.ok) return callback(null, { user: answer.user });
    if ('error' in answer) return callback(answer.error);
    callback(null, answer.response);
  }

  private async onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void): Promise<void> {
    const state = this.guard.session(session.id);
    if (!state) return callback(reply(421, '4.3.0 Session not registered'));
    const user = userOf(session);
    const decision = checkMailFrom({ requireTls: state.listener.requireTls, secure: session.secure, authRequired: state.listener.auth === 'required', user }, address);
    if (!decision.ok) return callback(this.guard.refuse(state, 'MAIL', decision.refusal, user?.name));
    if (this.disk && (await this.disk.isLow(this.runtimeOf(session).config.limits.minFreeDisk))) {
      this.log.warn({ event: 'disk-low', path: this.opts.config.queue.path }, 'free disk space below limits.minFreeDisk: refusing new mail');
      return callback(this.guard.refuse(state, 'MAIL', DISK_LOW, user?.name));
    }
    state.sender = decision.sender;
    state.recipients = new Map();
    state.domains = new Set();
    callback();
  }

  private onRcptTo(trusted: BlockList, address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const state = this.guard.session(session.id);
    if (!state) return callback(reply(421, '4.3.0 Session not registered'));
    const user = userOf(session);
    const decision = checkRcptTo(
      { authenticated: user !== undefined, trusted: inNetworks(trusted, state.ip), domains: state.domains, maxRecipientDomains: this.runtimeOf(session).config.limits.maxRecipientDomains },
      address,
    );
    if (!decision.ok) return callback(this.guard.refuse(state, 'RCPT', decision.refusal, user?.name));
    state.recipients.set(decision.recipient.address, decision.recipient);
    state.domains.add(decision.domain);
    callback();
  }

  private async onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null, message?: string) => void): Promise<void> {
    const state = this.guard.session(session.id);
    if (!state || state.sender === undefined || state.recipients.size === 0) {
      stream.resume();
      return callback(reply(451, '4.3.0 Transaction state lost, try again'));
    }
    const { store } = this.opts;
    const { config } = this.runtimeOf(session);
    const user = userOf(session);
    const receivedAt = Date.now();
    const message = newMessage(session, { ip: state.ip, listener: state.listener.name, sender: state.sender, recipients: state.recipients.values(), user: user?.name, tls: state.tls, receivedAt });
    const received = buildReceivedHeader({
      helo: session.hostNameAppearsAs || undefined,
      ip: state.ip,
      hostname: config.hostname,
      protocol: session.transmissionType || 'ESMTP',
      tls: state.tls,
      at: new Date(receivedAt),
    });
    const outcome = await receiveMessage({
      stream,
      store,
      limits: config.limits,
      message,
      received,
      log: this.log,
      onComplete: () => (state.storing = true),
      complete: () => state.storing,
      onTooSlow: (rate) => {
        this.log.info({ event: 'command-rejected', command: 'DATA', reason: 'data-rate-too-low', code: 421, ip: state.ip, listener: state.listener.name, rate: Math.round(rate) }, 'DATA too slow');
        this.drop(session.id, '4.4.2 Data rate too low, closing connection');
      },
    });

    if ('queueId' in outcome) {
      this.log.info(
        {
          event: 'message-accepted',
          queueId: outcome.queueId,
          ip: state.ip,
          listener: state.listener.name,
          user: user?.name,
          from: message.from,
          recipients: message.recipients.length,
          domains: [...state.domains],
          size: outcome.size,
          tls: state.tls,
        },
        'message accepted',
      );
      this.observer.messageAccepted(state.listener.name);
      callback(null, `2.0.0 Ok: queued as ${outcome.queueId}`);
      this.opts.onQueued?.(outcome.queueId);
    } else {
      const { refusal } = outcome;
      this.log.info(
        { event: 'command-rejected', command: 'DATA', reason: refusal.reason, code: refusal.code, ip: state.ip, listener: state.listener.name, user: user?.name, size: outcome.size },
        'message rejected',
      );
      this.observer.messageRefused(refusal.reason);
      callback(reply(refusal.code, refusal.text));
    }
    state.storing = false;
    state.sender = undefined;
    state.recipients = new Map();
    state.domains = new Set();
    if (state.expired) setImmediate(() => this.drop(session.id, '4.4.2 Session time limit exceeded, closing connection'));
  }
}

/** The authenticated user (smtp-server leaves `session.user` falsy, not always undefined, before AUTH). */
function userOf(session: SMTPServerSession): AuthenticatedUser | undefined {
  return (session.user as AuthenticatedUser | undefined) || undefined;
}
