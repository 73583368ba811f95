import type { BlockList } from 'node:net';
import type { Config, ListenerConfig } from '../config/schema';
import type { Logger } from '../log/logger';
import type { RecipientInput } from '../store/types';
import { AbuseThrottle } from './abuse-throttle';
import { ConnectionTracker } from './connection-tracker';
import { inNetworks } from './networks';
import type { InboundObserver } from './observer';
import { reply, tooManyErrors, type Refusal, type SmtpReplyError } from './replies';

/**
 * Connections and abuse: the connection caps and the penalty box at connect, the open sessions
 * and their deadlines, and the count of refused commands and failed AUTH per session (too many
 * close the session and are a strike against the client address).
 */

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
  /** The client has sent the whole message and waits for the store. */
  storing: boolean;
  /** The session deadline passed while storing: close once the reply is out. */
  expired: boolean;
}

export class ConnectionGuard {
  private readonly sessions = new Map<string, SessionState>();
  private readonly tracker: ConnectionTracker;
  private readonly abuse: AbuseThrottle;

  constructor(
    private readonly limits: Pick<Config['limits'], 'maxConnections' | 'maxConnectionsPerIp' | 'maxAbusePerIp' | 'abuseWindow' | 'maxBadCommands' | 'sessionDeadline'>,
    private readonly maxAuthFailures: number,
    private readonly observer: InboundObserver,
    private readonly log: Logger,
  ) {
    this.tracker = new ConnectionTracker(limits.maxConnections, limits.maxConnectionsPerIp);
    this.abuse = new AbuseThrottle(limits.maxAbusePerIp, limits.abuseWindow);
  }

  /**
   * Admits a new session or says why not (a 421). An address in the penalty box is refused unless
   * it is in the listener's trusted networks; the connection caps hold for everyone.
   */
  admit(listener: ListenerConfig, trusted: BlockList, sessionId: string, ip: string, onDeadline: () => void): SmtpReplyError | undefined {
    if (this.abuse.blocked(ip) && !inNetworks(trusted, ip)) {
      this.log.info({ event: 'connection-refused', listener: listener.name, ip, reason: 'abuse' }, 'connection refused: too many failed sessions from this address');
      this.observer.connectionRefused('abuse');
      return reply(421, '4.7.0 Too many failed attempts from your address, try again later');
    }
    const admitted = this.tracker.admit(sessionId, ip);
    if (admitted !== 'ok') {
      const reason = admitted === 'total' ? 'max-connections' : 'max-connections-per-ip';
      this.log.info({ event: 'connection-refused', listener: listener.name, ip, reason }, 'connection refused');
      this.observer.connectionRefused(reason);
      return reply(421, admitted === 'total' ? '4.7.0 Too many connections, try again later' : '4.7.0 Too many connections from your address, try again later');
    }
    const state: SessionState = { listener, ip, badCommands: 0, authFailures: 0, recipients: new Map(), domains: new Set(), storing: false, expired: false };
    state.deadline = setTimeout(onDeadline, this.limits.sessionDeadline);
    state.deadline.unref();
    this.sessions.set(sessionId, state);
    return undefined;
  }

  session(sessionId: string): SessionState | undefined {
    return this.sessions.get(sessionId);
  }

  /** The session ended: forget it and free its connection slot. */
  release(sessionId: string): void {
    const state = this.sessions.get(sessionId);
    if (state) clearTimeout(state.deadline);
    this.sessions.delete(sessionId);
    this.tracker.release(sessionId);
  }

  /** Stops every session deadline timer (shutdown). */
  clearDeadlines(): void {
    for (const state of this.sessions.values()) clearTimeout(state.deadline);
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
