import type { Logger } from '../log/logger';
import type { TlsRptCounters } from '../store/types';
import { detailKey, policyKey } from './keys';
import { countOf, noteOf } from './mapping';
import { addDays, utcDay } from './report';
import type { TlsSessionFacts } from '../evidence/tls-session';

/** Days of counters kept: the report of a day is sent the next day, retries may take a few more. */
export const TLSRPT_KEEP_DAYS = 14;

export interface TlsRptRecorder {
  /** Counts sessions; returns at once (the writes run in the background). */
  tlsSessions(events: TlsSessionFacts[]): void;
  /** Resolves when every count handed in so far has been written (or failed): tests and shutdown. */
  flush(): Promise<void>;
}

/**
 * Counts the delivery engine's TLS decisions in the store, per UTC day and policy domain. Counting never
 * blocks or fails a delivery: writes run in the background and a failure is logged and dropped. Once per
 * day it prunes counters older than TLSRPT_KEEP_DAYS.
 */
export function createTlsRptRecorder(deps: { counters: TlsRptCounters; logger: Logger }): TlsRptRecorder {
  const pending = new Set<Promise<void>>();
  let prunedFor: string | null = null;

  function track(work: Promise<unknown>, what: string, fields: Record<string, unknown>): void {
    const done = work.then(
      () => undefined,
      (err: unknown) => deps.logger.warn({ event: 'tlsrpt-count-failed', ...fields, err: (err as Error).message }, `TLS-RPT: could not ${what}`),
    );
    pending.add(done);
    void done.finally(() => pending.delete(done));
  }

  return {
    tlsSessions(events: TlsSessionFacts[]): void {
      for (const event of events) {
        const counted = countOf(event);
        if (!counted) continue;
        const day = utcDay(event.at);
        track(deps.counters.tlsRptCount(day, event.domain, policyKey(counted.policy), counted.detail && detailKey(counted.detail)), 'count a session', { domain: event.domain, day });
        const note = noteOf(event);
        if (note) track(deps.counters.tlsRptCount(day, event.domain, policyKey(counted.policy), detailKey(note), 0), 'note unusable TLSA records', { domain: event.domain, day });
        if (prunedFor !== day) {
          prunedFor = day;
          track(deps.counters.tlsRptPrune(addDays(day, -TLSRPT_KEEP_DAYS)), 'prune old counters', { day });
        }
      }
    },
    async flush(): Promise<void> {
      while (pending.size > 0) await Promise.all([...pending]);
    },
  };
}
