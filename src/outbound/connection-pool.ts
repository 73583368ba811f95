import { closeMxSession, type MxSession, type SessionJudgement } from '../smtp-client';

interface IdleSession {
  session: MxSession;
  judgement: SessionJudgement;
  sent: number;
  timer: NodeJS.Timeout;
}

export interface PooledSession {
  session: MxSession;
  judgement: SessionJudgement;
  /** Messages already sent on this connection. */
  sent: number;
}

/**
 * Idle, already judged MX sessions kept for the next message to the same MX, so a burst to one
 * destination pays for TCP, EHLO and the TLS handshake once. A session is only reused under the
 * same requirements it was judged against (the key includes them).
 */
export class ConnectionPool {
  private readonly idle = new Map<string, IdleSession[]>();
  private closed = false;

  constructor(
    private readonly maxMessagesPerConnection: number,
    private readonly idleTimeoutMs: number,
    /** How a session is closed (QUIT, bounded); the SMTP client's by default. */
    private readonly closeSession: (session: MxSession, waitMs: number) => Promise<void> = closeMxSession,
  ) {}

  /** `dane`: the host's DANE state and records, when DANE applies (a session judged under other records is not reused). */
  static key(host: string, port: number, requireValidCert: boolean, servername: string | null, dane: string | null = null): string {
    return `${host.toLowerCase()}|${port}|${requireValidCert ? 'verify' : 'encrypt'}|${servername ?? ''}${dane ? `|dane:${dane}` : ''}`;
  }

  /** An idle session for this key that is still open, or undefined. */
  take(key: string): PooledSession | undefined {
    const list = this.idle.get(key);
    while (list && list.length > 0) {
      const entry = list.pop()!;
      clearTimeout(entry.timer);
      if (!entry.session.connection.destroyed && !entry.session.socket.destroyed) {
        if (list.length === 0) this.idle.delete(key);
        return { session: entry.session, judgement: entry.judgement, sent: entry.sent };
      }
    }
    this.idle.delete(key);
    return undefined;
  }

  /** Keeps a session after a successful RSET, or closes it when it has carried enough. */
  give(key: string, pooled: PooledSession): void {
    if (this.closed || pooled.sent >= this.maxMessagesPerConnection || pooled.session.connection.destroyed) {
      void this.closeSession(pooled.session, 2_000);
      return;
    }
    const entry: IdleSession = {
      ...pooled,
      timer: setTimeout(() => {
        const list = this.idle.get(key);
        const index = list?.indexOf(entry) ?? -1;
        if (list && index >= 0) list.splice(index, 1);
        if (list && list.length === 0) this.idle.delete(key);
        void this.closeSession(entry.session, 2_000);
      }, this.idleTimeoutMs),
    };
    entry.timer.unref();
    const list = this.idle.get(key) ?? [];
    list.push(entry);
    this.idle.set(key, list);
  }

  get size(): number {
    let n = 0;
    for (const list of this.idle.values()) n += list.length;
    return n;
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.idle.values()].flat();
    this.idle.clear();
    await Promise.all(
      all.map((entry) => {
        clearTimeout(entry.timer);
        return this.closeSession(entry.session, 2_000);
      }),
    );
  }
}
