import os from 'node:os';
import type { Command } from 'commander';
import { applyFallbackAction, applyMessageAction, type FallbackAction, type MessageAction } from '../admin/actions';
import type { LoadedConfig } from '../config/load';
import { createLogger } from '../log/logger';
import { createAuditLog, type AdminActionEntry } from '../evidence/audit-log';
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

/** Writes one admin action to the audit file (or, without one, as a JSON line on stderr). */
async function recordAction(loaded: LoadedConfig, entry: Omit<AdminActionEntry, 'actor'>): Promise<void> {
  const audit = createAuditLog(loaded.config.audit.file, createLogger('info', 2));
  audit.action({ actor: cliActor(), ...entry } as AdminActionEntry);
  await audit.close();
}

/**
 * One audit writer for a command that records many actions (a bulk action writes one entry per item plus its
 * summary); closed, and so flushed, when `run` ends.
 */
export async function withAuditTrail<T>(loaded: LoadedConfig, run: (record: (entry: Omit<AdminActionEntry, 'actor'>) => void) => Promise<T>): Promise<T> {
  const audit = createAuditLog(loaded.config.audit.file, createLogger('info', 2));
  const actor = cliActor();
  try {
    return await run((entry) => audit.action({ actor, ...entry } as AdminActionEntry));
  } finally {
    await audit.close();
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
      const message = await applyMessageAction(store, action, id);
      await recordAction(loaded, { action: `queue-${action}`, id });
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
      await recordAction(loaded, { action: `fallback-${action}`, id, queueId: item.queueId });
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
    await recordAction(loaded, { action: 'queue-purge-quarantine', id: 'quarantine', before: new Date(before).toISOString(), count: purged.length, ids: purged.map((e) => e.id) });
    return purged;
  });
}
