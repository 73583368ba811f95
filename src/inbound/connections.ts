import type { BlockList } from 'node:net';
import type { Config, ListenerConfig } from '../config/schema';
import type { Logger } from '../log/logger';
import type { RecipientInput } from '../store/types';
import { AbuseThrottle } from './abuse-throttle';
import { ConnectionTracker, loadDeadline, type AdmitDecision } from './connection-tracker';
import { inNetworks } from './networks';
import type { AcceptHooks } from './listeners';
import type { InboundObserver } from './observer';
import { reply, tooManyErrors, type Refusal, type SmtpReplyError } from './replies';

/**
 * Connections and abuse: the connection caps (taken at TCP accept, before any TLS handshake) and
 * the penalty box at connect, the open sessions and their deadlines (session, first command, and
 * the idle timeout that tightens under load), and the count of refused commands and failed AUTH
 * per session (too many close the session and are a strike against the client address).
 */

/** The limits the guard applies (config.limits). */
export type GuardLimits = Pick<
  Config['limits'],
  | 'maxConnections'
  | 'maxConnectionsPerIp'
  | 'maxAbusePerIp'
  | 'abuseWindow'
  | 'maxBadCommands'
  | 'sessionDeadline'
  | 'stressLoad'
  | 'newAddressReserve'
  | 'firstCommandTimeout'
  | 'stressFirstCommandTimeout'
  | 'socketTimeout'
  | 'stressSocketTimeout'
  | 'tlsHandshakeTimeout'
>;

/** Why a session is being closed by one of the guard's deadlines. */
export type DeadlineKind = 'session' | 'first-command';

const CAP_REASONS: Record<Exclude<AdmitDecision, 'ok'>, { reason: string; text: string }> = {
  total: { reason: 'max-connections', text: '4.7.0 Too many connections, try again later' },
  'per-ip': { reason: 'max-connections-per-ip', text: '4.7.0 Too many connections from your address, try again later' },
  'fair-share': { reason: 'fair-share', text: '4.7.0 Too many connections from your address, try again later' },
};

/** A TCP connection counted at accept: its slot in the tracker. */
interface AcceptedConnection {
  slot: string;
}

export interface SessionState {
  listener: ListenerConfig;
  ip: string;
  badCommands: number;
  authFailures: number;
  tls?: { protocol: string; cipher: string };
  sender?: string;
  recipients: Map<string, RecipientInput>;
  domains: Set<string>;
  deadline?: NodeJS.Timeout;
  /** Runs until the client starts its first command; `firstCommandTimeout` is what it was set to. */
  firstCommand?: NodeJS.Timeout;
  firstCommandTimeout?: number;
  /** The tracker slot this session holds, and the accept key it came from (if counted at accept). */
  slot?: string;
  acceptKey?: string;
  /** The client has sent the whole message and waits for the store. */
  storing: boolean;
  /** The session deadline passed while storing: close once the reply is out. */
  expired: boolean;
}

export class ConnectionGuard {
  private readonly sessions = new Map<string, SessionState>();
  private readonly accepted = new Map<string, AcceptedConnection>();
  /** Tracker slot -> listener name, for the open-connections gauge. */
  private readonly slotListeners = new Map<string, string>();
  private readonly tracker: ConnectionTracker;
  private readonly abuse: AbuseThrottle;
  private nextSlot = 0;
  private idleTimeout: number;
  private idleListener: ((ms: number) => void) | undefined;

  constructor(
    private limits: GuardLimits,
    private maxAuthFailures: number,
    private readonly observer: InboundObserver,
    private readonly log: Logger,
  ) {
    const reserve = Math.ceil(limits.maxConnections * limits.newAddressReserve);
    this.tracker = new ConnectionTracker(limits.maxConnections, limits.maxConnectionsPerIp, { stressLoad: limits.stressLoad, reserve });
    this.abuse = new AbuseThrottle(limits.maxAbusePerIp, limits.abuseWindow);
    this.idleTimeout = limits.socketTimeout;
  }

  /**
   * New limits (a reload): caps and thresholds apply to connections and refusals from now on; the
   * deadlines of sessions already open stay as they were armed; the idle timeout follows the new values.
   */
  configure(limits: GuardLimits, maxAuthFailures: number): void {
    this.limits = limits;
    this.maxAuthFailures = maxAuthFailures;
    this.tracker.setLimits(limits.maxConnections, limits.maxConnectionsPerIp, { stressLoad: limits.stressLoad, reserve: Math.ceil(limits.maxConnections * limits.newAddressReserve) });
    this.abuse.configure(limits.maxAbusePerIp, limits.abuseWindow);
    this.loadChanged(true);
  }

  /** Open connections (accepted or in session) as a fraction of limits.maxConnections. */
  get load(): number {
    return this.tracker.load;
  }

  /** The idle timeout for the current load (limits.socketTimeout, cut towards stressSocketTimeout under load). */
  get currentIdleTimeout(): number {
    return this.idleTimeout;
  }

  /** The first-command deadline for the current load. */
  get currentFirstCommandTimeout(): number {
    return loadDeadline(this.tracker.load, this.limits.firstCommandTimeout, this.limits.stressFirstCommandTimeout, this.limits.stressLoad);
  }

  /** Told whenever the idle timeout for the current load changes (the listeners re-arm their sockets). */
  onIdleTimeoutChange(listener: (ms: number) => void): void {
    this.idleListener = listener;
  }

  /**
   * A TCP connection was accepted: it takes its slot now, before any TLS handshake or greeting.
   * Returns the 421 reply if a cap is broken (then nothing is counted), else undefined. The
   * session that may follow on this connection uses the same slot (see admit).
   */
  accept(listener: ListenerConfig, ip: string, port: number): SmtpReplyError | undefined {
    const key = acceptKey(listener.name, ip, port);
    const slot = `c${this.nextSlot++}`;
    const decision = this.tracker.admit(slot, normalizeIp(ip));
    if (decision !== 'ok') {
      const { reason, text } = CAP_REASONS[decision];
      this.log.info({ event: 'connection-refused', listener: listener.name, ip: normalizeIp(ip), reason }, 'connection refused');
      this.observer.connectionRefused(reason);
      return reply(421, text);
    }
    this.accepted.set(key, { slot });
    this.slotListeners.set(slot, listener.name);
    this.loadChanged();
    return undefined;
  }

  /** The hooks a listener calls at TCP accept (see listeners.ts guardAccept). */
  acceptHooks(listener: ListenerConfig): AcceptHooks {
    return {
      accept: (ip, port) => this.accept(listener, ip, port),
      closed: (ip, port) => this.socketClosed(listener, ip, port),
      handshakeTimedOut: (ip) => this.deadlineMissed('handshake-timeout', listener.name, ip, this.limits.tlsHandshakeTimeout),
    };
  }

  /** The accepted socket closed: frees its slot unless a session already did (a slot is freed once). */
  socketClosed(listener: ListenerConfig, ip: string, port: number): void {
    const key = acceptKey(listener.name, ip, port);
    const entry = this.accepted.get(key);
    if (!entry) return;
    this.accepted.delete(key);
    this.freeSlot(entry.slot);
    this.loadChanged();
  }

  /**
   * Admits a new session or says why not (a 421). An address in the penalty box is refused unless
   * it is in the listener's trusted networks; the connection caps hold for everyone. A session on a
   * connection counted at accept keeps that slot; one that was not (no accept seen) is counted now.
   */
  admit(listener: ListenerConfig, trusted: BlockList, sessionId: string, ip: string, onDeadline: (kind: DeadlineKind) => void, remotePort?: number): SmtpReplyError | undefined {
    const key = remotePort === undefined ? undefined : acceptKey(listener.name, ip, remotePort);
    let slot = key === undefined ? undefined : this.accepted.get(key)?.slot;
    if (slot === undefined) {
      slot = `s:${sessionId}`;
      const admitted = this.tracker.admit(slot, ip);
      if (admitted !== 'ok') {
        const { reason, text } = CAP_REASONS[admitted];
        this.log.info({ event: 'connection-refused', listener: listener.name, ip, reason }, 'connection refused');
        this.observer.connectionRefused(reason);
        return reply(421, text);
      }
      this.slotListeners.set(slot, listener.name);
      this.loadChanged();
    }
    if (this.abuse.blocked(ip) && !inNetworks(trusted, ip)) {
      this.log.info({ event: 'connection-refused', listener: listener.name, ip, reason: 'abuse' }, 'connection refused: too many failed sessions from this address');
      this.observer.connectionRefused('abuse');
      if (key !== undefined) this.accepted.delete(key);
      this.freeSlot(slot);
      this.loadChanged();
      return reply(421, '4.7.0 Too many failed attempts from your address, try again later');
    }
    const state: SessionState = { listener, ip, badCommands: 0, authFailures: 0, recipients: new Map(), domains: new Set(), storing: false, expired: false, slot, acceptKey: key };
    state.deadline = setTimeout(() => onDeadline('session'), this.limits.sessionDeadline);
    state.deadline.unref();
    state.firstCommandTimeout = this.currentFirstCommandTimeout;
    state.firstCommand = setTimeout(() => {
      state.firstCommand = undefined;
      onDeadline('first-command');
    }, state.firstCommandTimeout);
    state.firstCommand.unref();
    this.sessions.set(sessionId, state);
    return undefined;
  }

  session(sessionId: string): SessionState | undefined {
    return this.sessions.get(sessionId);
  }

  /** The client started a command line: the first-command deadline is met (the command deadline takes over). */
  commandStarted(sessionId: string): void {
    const state = this.sessions.get(sessionId);
    if (state?.firstCommand) {
      clearTimeout(state.firstCommand);
      state.firstCommand = undefined;
    }
  }

  /** The session ended: forget it and free its connection slot (once, whichever of session and socket ends first). */
  release(sessionId: string): void {
    const state = this.sessions.get(sessionId);
    this.sessions.delete(sessionId);
    if (!state) return;
    clearTimeout(state.deadline);
    clearTimeout(state.firstCommand);
    if (state.acceptKey !== undefined && this.accepted.get(state.acceptKey)?.slot === state.slot) this.accepted.delete(state.acceptKey);
    if (state.slot === undefined) return;
    this.freeSlot(state.slot);
    this.loadChanged();
  }

  /** Stops every session deadline timer (shutdown). */
  clearDeadlines(): void {
    for (const state of this.sessions.values()) {
      clearTimeout(state.deadline);
      clearTimeout(state.firstCommand);
    }
  }

  /** Logs and counts a connection closed by a deadline (handshake, first command, command line). */
  deadlineMissed(reason: 'handshake-timeout' | 'first-command-timeout' | 'command-timeout', listener: string, ip: string, timeout: number): void {
    this.log.info({ event: 'connection-closed', reason, listener, ip: normalizeIp(ip), timeout }, 'connection closed: deadline missed');
    this.observer.connectionRefused(reason);
  }

  /** Open connections (counted at accept, as the caps count them) per listener name. */
  openConnections(): Map<string, number> {
    const open = new Map<string, number>();
    for (const listener of this.slotListeners.values()) open.set(listener, (open.get(listener) ?? 0) + 1);
    return open;
  }

  private freeSlot(slot: string): void {
    this.tracker.release(slot);
    this.slotListeners.delete(slot);
  }

  private loadChanged(force = false): void {
    const idle = loadDeadline(this.tracker.load, this.limits.socketTimeout, this.limits.stressSocketTimeout, this.limits.stressLoad);
    // Re-arming every socket costs a pass over them: only for a change of a second or more.
    if (idle === this.idleTimeout) return;
    const atEnd = idle === this.limits.socketTimeout || idle === this.limits.stressSocketTimeout;
    if (!force && !atEnd && Math.abs(idle - this.idleTimeout) < 1_000) return;
    this.idleTimeout = idle;
    this.idleListener?.(idle);
  }

  /** Counts one refused command; true once the session has used up limits.maxBadCommands. */
  countBadCommand(state: SessionState): boolean {
    state.badCommands++;
    const closing = state.badCommands >= this.limits.maxBadCommands;
    if (closing) this.abuse.strike(state.ip);
    return closing;
  }

  /** Counts one failed AUTH; true once the session has used up auth.maxFailures (then closed with 421). */
  countAuthFailure(state: SessionState): boolean {
    state.authFailures++;
    const closing = state.authFailures >= this.maxAuthFailures;
    if (closing) this.abuse.strike(state.ip);
    return closing;
  }

  /** Logs a refused command and counts it; too many turn into `421` (smtp-server then closes). */
  refuse(state: SessionState, command: string, refusal: Refusal, user?: string): SmtpReplyError {
    const closing = this.countBadCommand(state);
    this.observer.commandRefused(refusal.reason);
    this.log.info(
      { event: 'command-rejected', command, reason: refusal.reason, code: closing ? 421 : refusal.code, ip: state.ip, listener: state.listener.name, user, tls: state.tls?.protocol },
      'SMTP command rejected',
    );
    return closing ? tooManyErrors(refusal.text) : reply(refusal.code, refusal.text);
  }

  /** An error reply smtp-server made up itself (syntax, sequence, unknown command): logged and counted. */
  protocolError(sessionId: string, code: number, text: string, user: string | undefined): boolean {
    const state = this.sessions.get(sessionId);
    if (!state) return false;
    const closing = this.countBadCommand(state);
    this.observer.commandRefused('protocol');
    this.log.info({ event: 'command-rejected', reason: 'protocol', code, detail: text.slice(0, 120), closing, ip: state.ip, listener: state.listener.name, user }, 'SMTP command rejected');
    return closing;
  }
}

/** Node reports IPv4 clients of a dual-stack listener as ::ffff:a.b.c.d; smtp-server and the caps use a.b.c.d. */
export function normalizeIp(ip: string): string {
  return ip.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '').toLowerCase();
}

function acceptKey(listener: string, ip: string, port: number): string {
  return `${listener}|${normalizeIp(ip)}|${port}`;
}
