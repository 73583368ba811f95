import { fsync, fsyncSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import type { Logger } from '../log/logger';

/** A state-changing admin action (API or CLI): who (token name or CLI user), what, on which id. */
export interface AdminActionEntry {
  actor: string;
  action: string;
  id: string;
  [detail: string]: unknown;
}

/**
 * The audit file writer. `Entry` is the recipient outcome record; its shape belongs to the
 * caller (delivery passes its stable audit record), this module writes it as it is.
 */
export interface AuditLog<Entry extends object = object> {
  /** Logs one recipient outcome as event "audit". */
  record(entry: Entry): void;
  /**
   * Logs the outcomes of one result; with a file, resolves once they are on disk (one fsync for them all,
   * off the event loop).
   */
  recordAll(entries: Entry[]): Promise<void>;
  /** Logs an admin action as event "admin-action". */
  action(entry: AdminActionEntry): void;
  close(): Promise<void>;
}

export interface AuditLogOptions {
  /**
   * Fsync the file after every line (record, action) or result (recordAll). Off for the mirror of the evidence
   * log (src/evidence/recorder.ts): the evidence log is the durable record and pays the one fsync per result.
   */
  fsync?: boolean;
}

/**
 * One JSON line per recipient outcome with its evidence: to its own append-only file when
 * `audit.file` is set (the default), else into the main log as event "audit". Never message content.
 * The file is written synchronously, so a line is in the file (the OS's page cache) when record() returns
 * and a crash of this process cannot lose it. With `fsync` (the default) every line is also fsynced, so it
 * survives a power cut (recordAll: when its promise resolves). The relay and the CLI write it as the mirror
 * of the evidence log, without fsync: the evidence log append before it is what survives a power cut. The
 * main log is asynchronous and may lose its last lines in a crash, which is why it is not the default.
 */
export function createAuditLog<Entry extends object = object>(file: string | null, logger: Logger, options: AuditLogOptions = {}): AuditLog<Entry> {
  const durable = options.fsync ?? true;
  if (!file) {
    const audit = logger.child({ event: 'audit' });
    const admin = logger.child({ event: 'admin-action' });
    const record = (entry: Entry): void => audit.info({ audit: entry }, 'recipient outcome');
    return {
      record,
      recordAll: async (entries) => entries.forEach(record),
      action: (entry) => admin.info({ admin: entry }, 'admin action'),
      close: async () => undefined,
    };
  }
  // Synchronous writes: a line is in the file (the OS's page cache) when the call returns, so a crash of this
  // process cannot lose it; the fsync below also survives a power cut.
  mkdirSync(path.dirname(file), { recursive: true });
  const fd = openSync(file, 'a');
  const destination = pino.destination({ fd, sync: true });
  const audit = pino({ base: { service: 'sealgate' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
  const write = (entry: Entry): void => audit.info({ event: 'audit', audit: entry }, 'recipient outcome');
  const sync = (): Promise<void> => (durable ? new Promise((resolve, reject) => fsync(fd, (error) => (error ? reject(error) : resolve()))) : Promise.resolve());
  return {
    record: (entry) => {
      write(entry);
      if (durable) fsyncSync(fd);
    },
    recordAll: async (entries) => {
      entries.forEach(write);
      await sync();
    },
    action: (entry) => {
      audit.info({ event: 'admin-action', admin: entry }, 'admin action');
      if (durable) fsyncSync(fd);
    },
    close: async () => {
      destination.end();
    },
  };
}
