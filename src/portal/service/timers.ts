import type { Logger } from '../../log/logger';
import type { PortalService } from './service';

export interface PortalTimerOptions {
  service: Pick<PortalService, 'handOverOnce' | 'sweepOnce'>;
  logger: Logger;
  /** Hand-over poll while idle (ms); after a full batch the next pass runs at once. */
  handOverEvery?: number;
  /** Reminder and expiry sweep (ms). */
  sweepEvery?: number;
  batch?: number;
}

/**
 * Runs the hand-over (every second; one cheap claim on an idle relay) and the sweep (every minute). Passes
 * never overlap; a failed pass is logged and the next one runs as usual, so the relay never crashes here.
 */
export function startPortal(options: PortalTimerOptions): { close(): Promise<void> } {
  const handOverEvery = options.handOverEvery ?? 1_000;
  const sweepEvery = options.sweepEvery ?? 60_000;
  const batch = options.batch ?? 20;
  let closed = false;
  let handOverTimer: NodeJS.Timeout | undefined;
  let sweepTimer: NodeJS.Timeout | undefined;
  let handOverRun: Promise<void> = Promise.resolve();
  let sweepRun: Promise<void> = Promise.resolve();

  const handOver = async (): Promise<void> => {
    let delay = handOverEvery;
    try {
      const done = await options.service.handOverOnce(batch);
      if (done >= batch) delay = 0; // more may be waiting
    } catch (err) {
      options.logger.error({ event: 'portal-handover-error', err: (err as Error).message }, 'portal hand-over pass failed');
    }
    if (!closed)
      handOverTimer = setTimeout(() => {
        handOverRun = handOver();
      }, delay);
  };
  const sweep = async (): Promise<void> => {
    try {
      await options.service.sweepOnce();
    } catch (err) {
      options.logger.error({ event: 'portal-sweep-error', err: (err as Error).message }, 'portal expiry sweep failed');
    }
    if (!closed)
      sweepTimer = setTimeout(() => {
        sweepRun = sweep();
      }, sweepEvery);
  };
  handOverTimer = setTimeout(() => {
    handOverRun = handOver();
  }, 0);
  sweepTimer = setTimeout(() => {
    sweepRun = sweep();
  }, 0);

  return {
    async close() {
      closed = true;
      clearTimeout(handOverTimer);
      clearTimeout(sweepTimer);
      await Promise.all([handOverRun, sweepRun]);
    },
  };
}
