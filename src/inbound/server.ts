import { isIP, type BlockList } from 'node:net';
import type { TLSSocket } from 'node:tls';
import {
  SMTPServer,
  type SMTPServerAddress,
  type SMTPServerAuthentication,
  type SMTPServerAuthenticationResponse,
  type SMTPServerDataStream,
  type SMTPServerOptions,
  type SMTPServerSession,
} from 'smtp-server';
import type { Metrics } from '../admin/metrics';
import type { AuthenticatedUser, UserDirectory } from '../auth/users';
import { networkList, type Config, type ListenerConfig } from '../config/schema';
import type { Logger } from '../log/logger';
import { checkNegotiated, tlsContextOptions, type TlsProfile } from '../policy/tls-profile';
import type { HeaderFacts, NewMessage, RecipientInput, Store } from '../store/types';
import { hasSourceRoute, MAIL_PARAMETERS, normalizeAddress, RCPT_PARAMETERS, unknownParameter } from './address';
import { AbuseThrottle } from './abuse-throttle';
import { ConnectionTracker } from './connection-tracker';
import { DiskSpaceCheck } from './disk-space';
import { extractHeaderFacts } from './header-facts';
import { GuardError, MessageGuard } from './message-guard';
import { buildReceivedHeader } from './received-header';
import { applySmtpServerAdaptations, type AdaptedServerOptions } from './smtp-server-adaptations';

/**
 * Inbound submission: one smtp-server per configured listener. Every decision a relay must make
 * before it takes responsibility for a message lives here: TLS before MAIL, AUTH or a trusted
 * network before RCPT, normalised addresses, limits, and a `250` only once the store has the
 * message durably.
 */

export interface InboundOptions {
  config: Config;
  store: Store;
  logger: Logger;
  profile: TlsProfile;
  users: UserDirectory;
  tls: { key: string | Buffer; cert: string | Buffer };
  /** Called after a message is durably queued (the delivery scheduler uses it to start at once). */
  onQueued?: (queueId: string) => void;
  /** Prometheus counters (admin /metrics); absent in tests that do not need them. */
  metrics?: Pick<Metrics, 'messagesAccepted' | 'messagesRefused' | 'inboundTls'>;
}

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

/** How long close() waits for messages that are being stored. */
const SHUTDOWN_GRACE_MS = 15_000;
const DATA_RATE_CHECK_MS = 1_000;

interface SessionState {
  listener: ListenerConfig;
  ip: string;
  badCommands: number;
  authFailures: number;
  tls?: { protocol: string; cipher: string };
  sender?: string;
  recipients: Map<string, RecipientInput>;
  domains: Set<string>;
  deadline?: NodeJS.Timeout;
  /** The client has sent the whole message and waits for the store. */
  storing: boolean;
  /** The session deadline passed while storing: close once the reply is out. */
  expired: boolean;
}

interface SmtpReplyError extends Error {
  responseCode: number;
}

function reply(code: number, text: string): SmtpReplyError {
  return Object.assign(new Error(text), { responseCode: code });
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
  return { listeners: inbound.bound, listening: () => inbound.listening, close: () => inbound.close() };
}

class Inbound {
  readonly bound: BoundListener[] = [];
  private readonly servers: SMTPServer[] = [];
  private readonly sessions = new Map<string, SessionState>();
  private readonly tracker: ConnectionTracker;
  private readonly abuse: AbuseThrottle;
  private readonly disk: DiskSpaceCheck | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private closing: Promise<void> | undefined;
  private readonly log: Logger;

  constructor(private readonly opts: InboundOptions) {
    const { limits, queue } = opts.config;
    this.log = opts.logger.child({ component: 'inbound' });
    this.tracker = new ConnectionTracker(limits.maxConnections, limits.maxConnectionsPerIp);
    this.abuse = new AbuseThrottle(limits.maxAbusePerIp, limits.abuseWindow);
    this.disk = opts.store.kind === 'file' ? new DiskSpaceCheck(queue.path, limits.minFreeDisk) : undefined;
  }

  async listen(): Promise<void> {
    for (const listener of this.opts.config.listeners) {
      const server = this.createServer(listener);
      this.servers.push(server);
      const port = await new Promise<number>((resolve, reject) => {
        const onError = (err: Error): void => reject(err);
        server.server.once('error', onError);
        server.listen(listener.port, listener.host, () => {
          server.server.off('error', onError);
          const address = server.server.address();
          resolve(typeof address === 'object' && address ? address.port : listener.port);
        });
      });
      this.bound.push({ name: listener.name, host: listener.host, port });
      this.log.info({ event: 'listener-started', listener: listener.name, host: listener.host, port, tls: listener.tls, auth: listener.auth }, 'SMTP listener started');
    }
  }

  get listening(): boolean {
    return this.closing === undefined && this.servers.every((server) => server.server.listening);
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const stopped = this.servers.map(
      (server) =>
        new Promise<void>((resolve) => {
          // smtp-server answers later commands with 421 and force-closes after closeTimeout.
          server.close(() => resolve());
        }),
    );
    if (this.inFlight.size > 0) {
      await withTimeout(Promise.allSettled([...this.inFlight]), SHUTDOWN_GRACE_MS);
    }
    for (const server of this.servers) {
      for (const connection of server.connections) {
        connection.send(421, '4.3.2 Service shutting down');
      }
    }
    await withTimeout(Promise.all(stopped), 5_000);
    for (const state of this.sessions.values()) clearTimeout(state.deadline);
  }

  private createServer(listener: ListenerConfig): SMTPServer {
    const { config } = this.opts;
    const trusted = networkList(listener.trustedNetworks);
    const options: SMTPServerOptions & AdaptedServerOptions = {
      ...tlsContextOptions(this.opts.profile),
      key: this.opts.tls.key,
      cert: this.opts.tls.cert,
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
      onConnect: (session, callback) => this.onConnect(listener, session, callback),
      onSecure: (socket, session, callback) => this.onSecure(socket, session, callback),
      onAuth: (auth, session, callback) => void this.onAuth(auth, session, callback),
      onMailFrom: (address, session, callback) => void this.onMailFrom(address, session, callback),
      onRcptTo: (address, session, callback) => this.onRcptTo(trusted, address, session, callback),
      onData: (stream, session, callback) => this.trackInFlight(this.onData(stream, session, callback)),
      onClose: (session) => this.onClose(session),
      sealgateOnProtocolError: (code, text, session) => this.onProtocolError(code, text, session),
      sealgateInspectCommand: (command, line, session) => {
        if (!hasSourceRoute(line)) return undefined;
        const state = this.sessions.get(session.id);
        const err = state ? this.refuse(state, command, 'source-route', 553, '5.1.3 Source routes are not accepted') : reply(553, '5.1.3 Source routes are not accepted');
        return { code: err.responseCode, message: err.message };
      },
    };
    const server = new SMTPServer(options);
    // A failed handshake or a reset socket is emitted here; without a listener it would crash the process.
    server.on('error', (err: Error & { code?: string; remoteAddress?: string; meta?: { remoteAddress?: string } }) => {
      this.log.info(
        { event: 'connection-error', listener: listener.name, ip: err.remoteAddress ?? err.meta?.remoteAddress, code: err.code, err: err.message },
        'SMTP connection error',
      );
    });
    return server;
  }

  private trackInFlight(work: Promise<void>): void {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  // ---- session lifecycle ----

  private onConnect(listener: ListenerConfig, session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const ip = session.remoteAddress;
    if (this.abuse.blocked(ip) && !networkList(listener.trustedNetworks).check(ip)) {
      this.log.info({ event: 'connection-refused', listener: listener.name, ip, reason: 'abuse' }, 'connection refused: too many failed sessions from this address');
      this.opts.metrics?.messagesRefused.inc({ reason: 'abuse' }); // metrics
      callback(reply(421, '4.7.0 Too many failed attempts from your address, try again later'));
      return;
    }
    const admitted = this.tracker.admit(session.id, ip);
    if (admitted !== 'ok') {
      this.log.info({ event: 'connection-refused', listener: listener.name, ip, reason: admitted === 'total' ? 'max-connections' : 'max-connections-per-ip' }, 'connection refused');
      this.opts.metrics?.messagesRefused.inc({ reason: admitted === 'total' ? 'max-connections' : 'max-connections-per-ip' }); // metrics
      callback(reply(421, admitted === 'total' ? '4.7.0 Too many connections, try again later' : '4.7.0 Too many connections from your address, try again later'));
      return;
    }
    const state: SessionState = { listener, ip, badCommands: 0, authFailures: 0, recipients: new Map(), domains: new Set(), storing: false, expired: false };
    state.deadline = setTimeout(() => this.onSessionDeadline(session.id), this.opts.config.limits.sessionDeadline);
    state.deadline.unref();
    this.sessions.set(session.id, state);
    this.log.debug({ event: 'connection', listener: listener.name, ip, session: session.id }, 'client connected');
    callback();
  }

  private onSecure(socket: unknown, session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const state = this.sessions.get(session.id);
    const tlsSocket = socket as TLSSocket;
    const cipher = tlsSocket.getCipher?.() as { standardName?: string; name?: string } | undefined;
    const facts = { protocol: tlsSocket.getProtocol?.() ?? 'unknown', cipher: cipher?.standardName ?? cipher?.name ?? 'unknown' };
    if (state) state.tls = facts;
    this.opts.metrics?.inboundTls.inc(facts); // metrics
    // The secure context already limits what can be negotiated; this is the second line of defence.
    const check = checkNegotiated(tlsSocket, this.opts.profile);
    if (!check.compliant) {
      this.log.warn({ event: 'tls-noncompliant', ip: session.remoteAddress, problems: check.problems, ...facts }, 'inbound TLS session outside the profile: closing');
      this.opts.metrics?.messagesRefused.inc({ reason: 'tls-noncompliant' }); // metrics
      callback(reply(421, '4.7.0 TLS session does not meet the security policy'));
      return;
    }
    this.log.debug({ event: 'tls', ip: session.remoteAddress, session: session.id, ...facts }, 'TLS established');
    callback();
  }

  private onClose(session: SMTPServerSession): void {
    const state = this.sessions.get(session.id);
    if (state) clearTimeout(state.deadline);
    this.sessions.delete(session.id);
    this.tracker.release(session.id);
  }

  private onSessionDeadline(sessionId: string): void {
    const state = this.sessions.get(sessionId);
    if (!state) return;
    if (state.storing) {
      state.expired = true;
      return;
    }
    this.log.info({ event: 'session-deadline', ip: state.ip, listener: state.listener.name, session: sessionId }, 'session time limit reached');
    this.dropSession(sessionId, '4.4.2 Session time limit exceeded, closing connection');
  }

  /** Sends a 421 (which makes smtp-server close the connection). */
  private dropSession(sessionId: string, text: string): void {
    for (const server of this.servers) {
      for (const connection of server.connections) {
        if (connection.id === sessionId) {
          connection.send(421, text);
          return;
        }
      }
    }
  }

  /** Counts one refused command; true once the session has used up limits.maxBadCommands. */
  private countBadCommand(state: SessionState): boolean {
    state.badCommands++;
    const closing = state.badCommands >= this.opts.config.limits.maxBadCommands;
    if (closing) this.abuse.strike(state.ip);
    return closing;
  }

  /** An error reply smtp-server made up itself (syntax, sequence, unknown command): logged and counted. */
  private onProtocolError(code: number, text: string, session: SMTPServerSession): boolean {
    const state = this.sessions.get(session.id);
    if (!state) return false;
    const closing = this.countBadCommand(state);
    this.opts.metrics?.messagesRefused.inc({ reason: 'protocol' }); // metrics
    const user = (session.user as AuthenticatedUser | undefined)?.name;
    this.log.info(
      { event: 'command-rejected', reason: 'protocol', code, detail: text.slice(0, 120), closing, ip: state.ip, listener: state.listener.name, user },
      'SMTP command rejected',
    );
    return closing;
  }

  /** Logs a refused command and counts it; too many turn into `421` (smtp-server then closes). */
  private refuse(state: SessionState, command: string, reason: string, code: number, text: string, user?: string): SmtpReplyError {
    const closing = this.countBadCommand(state);
    this.opts.metrics?.messagesRefused.inc({ reason }); // metrics
    this.log.info(
      { event: 'command-rejected', command, reason, code: closing ? 421 : code, ip: state.ip, listener: state.listener.name, user, tls: state.tls?.protocol },
      'SMTP command rejected',
    );
    return closing ? reply(421, `4.7.0 Too many errors (${text.replace(/^\d\.\d+\.\d+ /, '')}), closing connection`) : reply(code, text);
  }

  // ---- commands ----

  private async onAuth(
    auth: SMTPServerAuthentication,
    session: SMTPServerSession,
    callback: (err: Error | null | undefined, response?: SMTPServerAuthenticationResponse) => void,
  ): Promise<void> {
    const state = this.sessions.get(session.id);
    if (!state) return callback(reply(421, '4.3.0 Session not registered'));
    const name = auth.username ?? '';
    let user: AuthenticatedUser | undefined;
    try {
      user = auth.method === 'PLAIN' || auth.method === 'LOGIN' ? await this.opts.users.verify(name, auth.password ?? '') : undefined;
    } catch (err) {
      this.log.warn({ event: 'auth-error', ip: state.ip, err: (err as Error).message }, 'user lookup failed');
      return callback(reply(454, '4.7.0 Temporary authentication failure'));
    }
    if (user) {
      this.log.info({ event: 'auth', ip: state.ip, listener: state.listener.name, user: user.name, method: auth.method }, 'client authenticated');
      return callback(null, { user });
    }
    state.authFailures++;
    const closing = state.authFailures >= this.opts.config.auth.maxFailures;
    this.opts.metrics?.messagesRefused.inc({ reason: 'bad-credentials' }); // metrics
    this.log.info(
      { event: 'command-rejected', command: 'AUTH', reason: 'bad-credentials', code: closing ? 421 : 535, ip: state.ip, listener: state.listener.name, user: safeForLog(name) },
      'authentication failed',
    );
    if (closing) {
      this.abuse.strike(state.ip);
      return callback(reply(421, '4.7.0 Too many failed authentication attempts, closing connection'));
    }
    callback(null, { responseCode: 535, message: '5.7.8 Authentication credentials invalid' });
  }

  private async onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void): Promise<void> {
    const state = this.sessions.get(session.id);
    if (!state) return callback(reply(421, '4.3.0 Session not registered'));
    const user = session.user as AuthenticatedUser | undefined;
    const refuse = (reason: string, code: number, text: string): void => callback(this.refuse(state, 'MAIL', reason, code, text, user?.name));

    if (state.listener.requireTls && !session.secure) return refuse('tls-required', 530, '5.7.0 Must issue a STARTTLS command first');
    if (state.listener.auth === 'required' && !user) return refuse('auth-required', 530, '5.7.0 Authentication required');
    const unknown = unknownParameter(address.args, MAIL_PARAMETERS);
    if (unknown) return refuse('unknown-parameter', 555, `5.5.4 Unsupported MAIL parameter ${safeForReply(unknown)}`);

    const sender = normalizeAddress(address.address, 'sender');
    if (!sender.ok) return refuse(`sender-${sender.problem}`, 553, `5.1.7 ${sender.message}`);
    if (user?.allowedSenderDomains && !user.allowedSenderDomains.includes(sender.domain)) {
      return refuse('sender-domain-not-allowed', 553, '5.7.1 Sender address not allowed for this user');
    }
    if (this.disk && (await this.disk.isLow())) {
      this.log.warn({ event: 'disk-low', path: this.opts.config.queue.path }, 'free disk space below limits.minFreeDisk: refusing new mail');
      return refuse('disk-low', 452, '4.3.1 Insufficient system storage, try again later');
    }

    state.sender = sender.address;
    state.recipients = new Map();
    state.domains = new Set();
    callback();
  }

  private onRcptTo(trusted: BlockList, address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    const state = this.sessions.get(session.id);
    if (!state) return callback(reply(421, '4.3.0 Session not registered'));
    const user = session.user as AuthenticatedUser | undefined;
    const refuse = (reason: string, code: number, text: string): void => callback(this.refuse(state, 'RCPT', reason, code, text, user?.name));

    const unknown = unknownParameter(address.args, RCPT_PARAMETERS);
    if (unknown) return refuse('unknown-parameter', 555, `5.5.4 Unsupported RCPT parameter ${safeForReply(unknown)}`);
    const recipient = normalizeAddress(address.address, 'recipient');
    if (!recipient.ok) return refuse(`recipient-${recipient.problem}`, 553, `5.1.3 ${recipient.message}`);
    // Never an open relay: only an authenticated client or one from a trusted network may relay.
    if (!user && !isTrusted(trusted, state.ip)) return refuse('relay-denied-untrusted-unauthenticated', 554, '5.7.1 Relay access denied');
    if (!state.domains.has(recipient.domain) && state.domains.size >= this.opts.config.limits.maxRecipientDomains) {
      return refuse('too-many-domains', 452, '4.5.3 Too many recipient domains');
    }

    const input: RecipientInput = { address: recipient.address };
    if (address.dsn?.notify) input.notify = address.dsn.notify;
    if (address.dsn?.orcpt) input.orcpt = address.dsn.orcpt;
    state.recipients.set(recipient.address, input);
    state.domains.add(recipient.domain);
    callback();
  }

  private async onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null, message?: string) => void): Promise<void> {
    const state = this.sessions.get(session.id);
    if (!state || state.sender === undefined || state.recipients.size === 0) {
      stream.resume();
      return callback(reply(451, '4.3.0 Transaction state lost, try again'));
    }
    const { config, store } = this.opts;
    const user = session.user as AuthenticatedUser | undefined;
    const receivedAt = Date.now();
    const message = this.newMessage(state, session, receivedAt);
    const received = buildReceivedHeader({
      helo: session.hostNameAppearsAs || undefined,
      ip: state.ip,
      hostname: config.hostname,
      protocol: session.transmissionType || 'ESMTP',
      tls: state.tls,
      at: new Date(receivedAt),
    });
    const guard = new MessageGuard(config.limits, received);
    guard.on('error', () => undefined); // reported through headerReady()/enqueue and guard.problem
    let clientAborted = false;
    // The client may vanish mid-DATA: smtp-server then destroys the stream; the store must see an error.
    stream.on('error', (err) => {
      clientAborted = true;
      guard.destroy(err);
    });
    stream.pipe(guard);
    // After a guard failure keep reading (and discarding) the client's data so the reply can follow its final dot.
    guard.once('error', () => {
      stream.unpipe(guard);
      stream.resume();
    });
    stream.once('end', () => {
      state.storing = true;
    });
    const rateTimer = this.watchDataRate(stream, session.id, state, receivedAt);

    let outcome: { queueId: string } | { error: SmtpReplyError; reason: string };
    try {
      const headers = await this.headerFacts(guard);
      const record = await store.enqueue(message, guard, headers);
      outcome = { queueId: record.id };
    } catch (err) {
      outcome = this.dataFailure(guard, err as Error, clientAborted);
      // The store may have stopped reading mid-message: drain the rest so the reply can follow the final dot.
      stream.unpipe(guard);
      guard.destroy();
      stream.resume();
    } finally {
      clearInterval(rateTimer);
    }

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
          size: guard.bytes,
          tls: state.tls,
        },
        'message accepted',
      );
      this.opts.metrics?.messagesAccepted.inc({ listener: state.listener.name }); // metrics
      callback(null, `2.0.0 Ok: queued as ${outcome.queueId}`);
      this.opts.onQueued?.(outcome.queueId);
    } else {
      this.log.info(
        { event: 'command-rejected', command: 'DATA', reason: outcome.reason, code: outcome.error.responseCode, ip: state.ip, listener: state.listener.name, user: user?.name, size: guard.bytes },
        'message rejected',
      );
      this.opts.metrics?.messagesRefused.inc({ reason: outcome.reason }); // metrics
      callback(outcome.error);
    }
    state.storing = false;
    state.sender = undefined;
    state.recipients = new Map();
    state.domains = new Set();
    if (state.expired) setImmediate(() => this.dropSession(session.id, '4.4.2 Session time limit exceeded, closing connection'));
  }

  private async headerFacts(guard: MessageGuard): Promise<HeaderFacts> {
    const block = await guard.headerReady();
    try {
      return await extractHeaderFacts(block);
    } catch {
      // Unparseable headers are the recipient's problem, not a reason to refuse; keep no facts.
      return {};
    }
  }

  /** Maps why DATA failed to a reply: guard problems are permanent, everything else (the store) temporary. */
  private dataFailure(guard: MessageGuard, err: Error, clientAborted: boolean): { error: SmtpReplyError; reason: string } {
    const problem = guard.problem ?? (err instanceof GuardError ? err : undefined);
    if (problem) {
      switch (problem.problem) {
        case 'too-big':
          return { reason: 'message-too-big', error: reply(552, `5.3.4 ${problem.message}`) };
        case 'header-too-big':
          return { reason: 'header-too-big', error: reply(552, `5.3.4 ${problem.message}`) };
        case 'line-too-long':
          return { reason: 'line-too-long', error: reply(552, `5.3.4 ${problem.message}`) };
        case 'bare-newline':
          return { reason: 'bare-newline', error: reply(550, '5.6.0 Message contains bare CR or LF line endings (RFC 5321 2.3.8)') };
      }
    }
    if (clientAborted) {
      return { reason: 'client-aborted', error: reply(451, '4.3.0 Message not received in full') };
    }
    this.log.error({ event: 'store-failed', err: err.message, errName: err.name }, 'could not store a message');
    return { reason: 'store-failed', error: reply(451, '4.3.0 Temporary failure storing the message, try again later') };
  }

  /** smtp-server's socketTimeout counts idle time only, so a trickling client is cut off here. */
  private watchDataRate(stream: SMTPServerDataStream, sessionId: string, state: SessionState, startedAt: number): NodeJS.Timeout {
    const { dataGrace, minDataRate } = this.opts.config.limits;
    const timer = setInterval(() => {
      if (state.storing || minDataRate === 0) return;
      const elapsed = Date.now() - startedAt;
      if (elapsed <= dataGrace) return;
      const rate = (stream.byteLength || 0) / (elapsed / 1000);
      if (rate >= minDataRate) return;
      clearInterval(timer);
      this.log.info({ event: 'command-rejected', command: 'DATA', reason: 'data-rate-too-low', code: 421, ip: state.ip, listener: state.listener.name, rate: Math.round(rate) }, 'DATA too slow');
      this.dropSession(sessionId, '4.4.2 Data rate too low, closing connection');
    }, DATA_RATE_CHECK_MS);
    timer.unref();
    return timer;
  }

  private newMessage(state: SessionState, session: SMTPServerSession, receivedAt: number): NewMessage {
    const envelope = session.envelope;
    const params: NewMessage['params'] = {};
    if (envelope.bodyType) params.bodyType = envelope.bodyType.toLowerCase() === '8bitmime' ? '8BITMIME' : '7BIT';
    if (envelope.smtpUtf8) params.smtpUtf8 = true;
    if (envelope.requireTLS) params.requireTls = true;
    const dsn = envelope.dsn;
    if (dsn && (dsn.ret || dsn.envid)) {
      params.dsn = {};
      if (dsn.ret === 'FULL' || dsn.ret === 'HDRS') params.dsn.ret = dsn.ret;
      if (dsn.envid) params.dsn.envid = dsn.envid;
    }
    const user = session.user as AuthenticatedUser | undefined;
    const client: NewMessage['client'] = { ip: state.ip, listener: state.listener.name };
    if (session.hostNameAppearsAs) client.helo = session.hostNameAppearsAs;
    if (user) client.user = user.name;
    if (state.tls) client.tls = state.tls;
    return { from: state.sender ?? '', recipients: [...state.recipients.values()], params, client, receivedAt };
  }
}

function isTrusted(list: BlockList, ip: string): boolean {
  const family = isIP(ip);
  if (family === 0) return false;
  return list.check(ip, family === 6 ? 'ipv6' : 'ipv4');
}

/** Parameter names echoed in replies: printable ASCII only, bounded. */
function safeForReply(value: string): string {
  return value.replace(/[^\x21-\x7e]/g, '?').slice(0, 64);
}

/** A client-supplied user name in a log line: bounded and without control characters. */
function safeForLog(value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/[\x00-\x1f\x7f-\x9f]/g, '?').slice(0, 128);
}

async function withTimeout(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
