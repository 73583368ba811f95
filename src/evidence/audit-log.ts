import pino from 'pino';
import type { Logger } from '../log/logger';
import type { AuditEntry } from './evidence';

/** A state-changing admin action (API or CLI): who (token name or CLI user), what, on which id. */
export interface AdminActionEntry {
  actor: string;
  action: string;
  id: string;
  [detail: string]: unknown;
}

export interface AuditLog {
  record(entry: AuditEntry): void;
  /** Logs an admin action as event "admin-action". */
  action(entry: AdminActionEntry): void;
  close(): Promise<void>;
}

/**
 * One JSON line per recipient outcome with its evidence: to its own append-only file when
 * `audit.file` is set, else into the main log as event "audit". Never message content.
 */
export function createAuditLog(file: string | null, logger: Logger): AuditLog {
  if (!file) {
    const audit = logger.child({ event: 'audit' });
    const admin = logger.child({ event: 'admin-action' });
    return {
      record: (entry) => audit.info({ audit: entry }, 'recipient outcome'),
      action: (entry) => admin.info({ admin: entry }, 'admin action'),
      close: async () => undefined,
    };
  }
  const destination = pino.destination({ dest: file, append: true, mkdir: true, sync: true });
  const audit = pino({ base: { service: 'sealgate' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
  return {
    record: (entry) => audit.info({ event: 'audit', audit: entry }, 'recipient outcome'),
    action: (entry) => audit.info({ event: 'admin-action', admin: entry }, 'admin action'),
    close: async () => {
      destination.end();
    },
  };
}
