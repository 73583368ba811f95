import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, promises as fs, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { silentLogger, type Logger } from '../../../src/log/logger';
import { acquireSpoolLock, formatOwner, processFacts } from '../../../src/store/file/locks';
import { parseSlotRef } from '../../../src/store/lmdb/body-slabs';
import { bodyFilesPath } from '../../../src/store/lmdb/body-files';
import { envPath } from '../../../src/store/lmdb/env';
import { LmdbStore } from '../../../src/store/lmdb/lmdb-store';
import { BODY_CHUNK } from '../../../src/store/lmdb/queue';
import type { Store } from '../../../src/store/types';
import type { ContractBackend, DamageHooks } from '../contract';

/** The environment opened beside the store with raw access, as a disk fault or an operator's tool would. */
export interface RawEnv {
  root: RootDatabase;
  messages: Database<string, string>;
  bodies: Database<Buffer, [string, number]>;
  fallback: Database<string, string>;
  changes: Database<string, [number, number, number]>;
  inflight: Database<string, string>;
  slots: Database<string, string>;
  close(): Promise<void>;
}

export function rawEnv(dir: string): RawEnv {
  const root = open({ path: envPath(dir), compression: false });
  return {
    root,
    messages: root.openDB<string, string>({ name: 'messages', encoding: 'string' }),
    bodies: root.openDB<Buffer, [string, number]>({ name: 'bodies', encoding: 'binary' }),
    fallback: root.openDB<string, string>({ name: 'fallback', encoding: 'string' }),
    changes: root.openDB<string, [number, number, number]>({ name: 'changes', encoding: 'string' }),
    inflight: root.openDB<string, string>({ name: 'inflight', encoding: 'string' }),
    slots: root.openDB<string, string>({ name: 'slots', encoding: 'string' }),
    close: () => root.close(),
  };
}

/** The chunks of one body as stored, in order. */
export function chunksOf(raw: RawEnv, id: string): Buffer[] {
  return [...raw.bodies.getRange({ start: [id, 0], end: [id, Number.MAX_SAFE_INTEGER] })].map(({ value }) => Buffer.from(value));
}

/**
 * Rewrites a stored body as spools written before bodies were files kept it: BODY_CHUNK pieces under [id, n], no
 * file. The store must be closed.
 */
export async function rewriteAsChunks(dir: string, id: string): Promise<void> {
  const body = await fs.readFile(bodyFile(dir, id));
  const raw = rawEnv(dir);
  try {
    await raw.root.transaction(() => {
      for (let n = 0; n * BODY_CHUNK < body.length; n++) raw.bodies.putSync([id, n], body.subarray(n * BODY_CHUNK, (n + 1) * BODY_CHUNK));
    });
  } finally {
    await raw.close();
  }
  await fs.rm(bodyFile(dir, id));
}

/** The slab slot a body is in (the relay's small bodies), or undefined for a body in a file or chunks. */
export async function slotOf(dir: string, id: string): Promise<{ file: string; offset: number; size: number } | undefined> {
  const raw = rawEnv(dir);
  try {
    const ref = parseSlotRef(raw.slots.get(id));
    return ref ? { file: path.join(bodyFilesPath(dir), 'slabs', String(ref.size)), offset: ref.index * ref.size, size: ref.size } : undefined;
  } finally {
    await raw.close();
  }
}

/** The files under a spool (relative to it) whose bytes contain `marker`: where a body's plaintext is at rest. */
export async function spoolFilesContaining(dir: string, marker: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (folder: string): Promise<void> => {
    for (const entry of await fs.readdir(folder, { withFileTypes: true })) {
      const file = path.join(folder, entry.name);
      if (entry.isDirectory()) await walk(file);
      else if ((await fs.readFile(file)).includes(marker, 0, 'latin1')) found.push(path.relative(dir, file));
    }
  };
  await walk(dir);
  return found;
}

/** Where a body's file is (lmdb-bodies/<id>). */
export function bodyFile(dir: string, id: string): string {
  return path.join(bodyFilesPath(dir), id);
}

/** Hand-damage of the LMDB entries, written straight into the environment (or into a body's file). */
export function lmdbDamage(dir: string): DamageHooks {
  const withRaw = async (task: (raw: RawEnv) => Promise<unknown>) => {
    const raw = rawEnv(dir);
    try {
      await task(raw);
    } finally {
      await raw.close();
    }
  };
  const editMessage = (id: string, change: (record: Record<string, unknown>) => void) =>
    withRaw(async (raw) => {
      const record = JSON.parse(raw.messages.get(id)!) as Record<string, unknown>;
      change(record);
      await raw.messages.put(id, JSON.stringify(record));
    });
  return {
    // A body in a slot is cut short the only way a slot can be: its slab file ends inside it.
    truncateBody: async (id, bytes) => {
      const slot = await slotOf(dir, id);
      if (slot) return fs.truncate(slot.file, slot.offset + bytes);
      return existsSync(bodyFile(dir, id))
        ? fs.truncate(bodyFile(dir, id), bytes)
        : withRaw(async (raw) => {
            const chunks = chunksOf(raw, id);
            await raw.root.transaction(() => {
              let left = bytes;
              chunks.forEach((chunk, n) => {
                if (left >= chunk.length) left -= chunk.length;
                else if (left > 0) {
                  raw.bodies.putSync([id, n], chunk.subarray(0, left));
                  left = 0;
                } else raw.bodies.removeSync([id, n]);
              });
            });
          });
    },
    flipBodyByte: async (id, offset) => {
      const slot = await slotOf(dir, id);
      if (slot) return flipFileByte(slot.file, slot.offset + offset);
      return existsSync(bodyFile(dir, id))
        ? flipFileByte(bodyFile(dir, id), offset)
        : withRaw(async (raw) => {
            const n = Math.floor(offset / BODY_CHUNK);
            const chunk = Buffer.from(raw.bodies.get([id, n])!);
            chunk[offset % BODY_CHUNK] = chunk[offset % BODY_CHUNK]! ^ 0xff;
            await raw.bodies.put([id, n], chunk);
          });
    },
    editMessage,
    editJob: (jobId, change) =>
      editMessage(jobId.split('/')[0]!, (record) => {
        change((record.jobs as Array<Record<string, unknown>>).find((j) => j.id === jobId)!);
      }),
    garble: (jobId) => withRaw((raw) => raw.messages.put(jobId.split('/')[0]!, '{"id": "truncated')),
  };
}

/** Flips one byte of a file in place. */
export async function flipFileByte(file: string, offset: number): Promise<void> {
  const handle = await fs.open(file, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, offset);
    byte[0] = byte[0]! ^ 0xff;
    await handle.write(byte, 0, 1, offset);
  } finally {
    await handle.close();
  }
}

/**
 * A temp spool and its stores. `asRelay`: this process holds the spool lock, as the relay does, so the store hands
 * out slab slots for small bodies (body-slabs.ts); otherwise it writes every body as a file, as an admin command.
 */
export function lmdbBackend(options: { logger?: Logger; asRelay?: boolean } = {}): ContractBackend & { dir: string; openStore(extra?: { keepFinished?: number }): Promise<LmdbStore> } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-lmdb-'));
  const opened: Store[] = [];
  let releaseLock: (() => Promise<void>) | undefined;
  const openStore = async (extra: { keepFinished?: number; fallbackRetention?: number; quarantineRetention?: number } = {}) => {
    if (options.asRelay) releaseLock ??= await acquireSpoolLock(dir);
    const store = new LmdbStore({
      path: dir,
      keepFinished: extra.keepFinished ?? 7 * 86_400_000,
      fallbackRetention: extra.fallbackRetention,
      quarantineRetention: extra.quarantineRetention,
      evidencePath: path.join(dir, 'evidence'),
      logger: options.logger ?? silentLogger(),
    });
    await store.open();
    opened.push(store);
    return store;
  };
  return {
    dir,
    damage: lmdbDamage(dir),
    open: openStore,
    openStore,
    async dispose() {
      for (const store of opened.splice(0)) await store.close().catch(() => undefined);
      await releaseLock?.();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs `action` while another live process holds the spool lock (a stand-in relay: `relay.pid` names it), as an
 * admin command beside a running relay sees the spool; the stand-in is killed and the lock file removed after.
 */
export async function besideOtherRelay(dir: string, action: () => Promise<void>): Promise<void> {
  const relay = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
  try {
    await new Promise((resolve) => relay.once('spawn', resolve));
    const stat = processFacts(relay.pid!).stat;
    await fs.writeFile(path.join(dir, 'relay.pid'), formatOwner({ pid: relay.pid!, ...(stat ? { start: stat.start } : {}) }));
    await action();
  } finally {
    const exited = new Promise((resolve) => relay.once('exit', resolve));
    process.kill(relay.pid!, 'SIGKILL');
    await exited;
    await fs.rm(path.join(dir, 'relay.pid'), { force: true });
  }
}
