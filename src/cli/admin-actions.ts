import os from 'node:os';
import type { Command } from 'commander';
import { applyFallbackAction, applyMessageAction, type FallbackAction, type MessageAction } from '../admin/actions';
import type { LoadedConfig } from '../config/load';
import { createLogger } from '../log/logger';
import { createAuditLog, type AdminActionEntry } from '../evidence/audit-log';
import { createEvidenceRecorder, fallbackSubject, messageSubject, type EvidenceSubject } from '../evidence/recorder';
import { isStoreError, type FallbackItem, type MessageRecord, type QuarantineEntry, type Store } from '../store/types';
import { withStore } from './context';
import { CliError } from './errors';

/** Who runs the CLI, for the audit log: "cli:<login name>" (uid when the account has no name). */
function cliActor(): string {
  try {
    return `cli:${os.userInfo().username}`;
  } catch {
    return `cli:uid-${process.getuid?.() ?? 'unknown'}`;
  }
}

/** Records one admin action: see withAuditTrail. */
export async function recordAction(store: Pick<Store, 'appendEvidence'>, loaded: LoadedConfig, entry: Omit<AdminActionEntry, 'actor'>, subject?: EvidenceSubject): Promise<void> {
  await withAuditTrail(store, loaded, (record) => record(entry, subject));
}

/**
 * One evidence writer for a command that records one or many actions (a bulk action writes one entry per item
 * plus its summary): each `record` resolves once the action is durable in the store's evidence log (so the
 * command never exits 0 before), and mirrors it to the audit file (or, without one, a JSON line on stderr).
 */
export async function withAuditTrail<T>(
  store: Pick<Store, 'appendEvidence'>,
  loaded: LoadedConfig,
  run: (record: (entry: Omit<AdminActionEntry, 'actor'>, subject?: EvidenceSubject) => Promise<void>) => Promise<T>,
): Promise<T> {
  const logger = createLogger('info', 2);
  const evidence = createEvidenceRecorder({ log: store, mirror: createAuditLog(loaded.config.audit.file, logger, { fsync: false }), logger });
  const actor = cliActor();
  try {
    return await run((entry, subject) => evidence.recordAction({ actor, ...entry } as AdminActionEntry, subject));
  } finally {
    await evidence.close();
  }
}

/** Store errors as exit codes, by code: unknown id 6, impossible in this state (or handed over) 1. */
export function asCliError(err: unknown): unknown {
  if (isStoreError(err, 'not-found')) return new CliError(err.message, 6);
  if (isStoreError(err, 'wrong-state', 'handed-over')) return new CliError(err.message, 1);
  return err;
}

export async function runMessageAction(command: Command, action: MessageAction, id: string): Promise<MessageRecord | undefined> {
  return withStore(command, async (store: Store, loaded) => {
    try {
      // Read first: the evidence record of a delete names the Message-ID and sender the record had.
      const before = action === 'delete' ? await store.getMessage(id) : undefined;
      const message = await applyMessageAction(store, action, id);
      const about = message ?? before;
      await recordAction(store, loaded, { action: `queue-${action}`, id }, about ? messageSubject(about) : { queueId: id });
      return message;
    } catch (err) {
      throw asCliError(err);
    }
  });
}

export async function runFallbackAction(command: Command, action: FallbackAction, id: string): Promise<FallbackItem> {
  return withStore(command, async (store: Store, loaded) => {
    try {
      const item = await applyFallbackAction(store, action, id);
      await recordAction(store, loaded, { action: `fallback-${action}`, id, queueId: item.queueId }, fallbackSubject(item));
      return item;
    } catch (err) {
      throw asCliError(err);
    }
  });
}

/** Deletes quarantined entries set aside before `before` (epoch ms), audited as one admin action. */
export async function runQuarantinePurge(command: Command, before: number): Promise<QuarantineEntry[]> {
  return withStore(command, async (store: Store, loaded) => {
    const purged = await store.purgeQuarantined(before);
    await recordAction(store, loaded, { action: 'queue-purge-quarantine', id: 'quarantine', before: new Date(before).toISOString(), count: purged.length, ids: purged.map((e) => e.id) });
    return purged;
  });
}
