import pino from 'pino';
import type { Logger } from '../log/logger';
import type { AuditEntry } from './evidence';

export interface AuditLog {
  record(entry: AuditEntry): void;
  close(): Promise<void>;
}

/**
 * One JSON line per recipient outcome with its evidence: to its own append-only file when
 * `audit.file` is set, else into the main log as event "audit". Never message content.
 */
export function createAuditLog(file: string | null, logger: Logger): AuditLog {
  if (!file) {
    const audit = logger.child({ event: 'audit' });
    return { record: (entry) => audit.info({ audit: entry }, 'recipient outcome'), close: async () => undefined };
  }
  const destination = pino.destination({ dest: file, append: true, mkdir: true, sync: true });
  const audit = pino({ base: { service: 'sealgate', event: 'audit' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
  return {
    record: (entry) => audit.info({ audit: entry }, 'recipient outcome'),
    close: async () => {
      destination.end();
    },
  };
}
