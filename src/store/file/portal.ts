import { createWriteStream, promises as fs } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { byCreation, chainPortalEvent, matchesPortalFilter, parsePortalEvent, shreddedItem, validPortalId } from '../portal-chain';
import { page } from '../records';
import type { PortalStore } from '../roles';
import { EnqueueAbortedError, NotFoundError, type PortalEvent, type PortalEventInput, type PortalFilter, type PortalItem } from '../types';
import { fsyncDir, readJson, removeFile, tempName, writeFileAtomic } from './durable';
import { idOfJsonName, type SpoolLayout } from './layout';
import { KeyedMutex, withFileLock } from './locks';

/**
 * Portal copies over the embedded spool (layout.ts, portal/): the ciphertext and the record are files written
 * like the queue's (temp file, fsync, rename, fsync of the folder); the token index is one small file per live
 * token hash; each item's trail is an append-only JSON-lines file. Every change of one item holds the item's
 * lock (in this process and across processes), so the trail's chain is computed from the true last entry.
 */
export class FilePortalStore implements PortalStore {
  private readonly mutex = new KeyedMutex();

  constructor(private readonly layout: SpoolLayout) {}

  private locked<T>(id: string, task: () => Promise<T>): Promise<T> {
    return this.mutex.run(`portal:${id}`, () => withFileLock(this.layout.portalLockFile(id), task));
  }

  private async readItem(id: string): Promise<PortalItem | undefined> {
    if (!validPortalId(id)) return undefined;
    return readJson<PortalItem>(this.layout.portalItemFile(id));
  }

  /** Writes the record, then points the token index at it and drops the previous token's entry. */
  private async writeItem(item: PortalItem, previousToken: string | null | undefined): Promise<void> {
    const layout = this.layout;
    if (item.tokenHash && item.tokenHash !== previousToken) await writeFileAtomic(layout.tmp, layout.portalTokenFile(item.tokenHash), item.id);
    await writeFileAtomic(layout.tmp, layout.portalItemFile(item.id), JSON.stringify(item));
    if (previousToken && previousToken !== item.tokenHash) await removeFile(layout.portalTokenFile(previousToken));
  }

  async putPortalCopy(item: PortalItem, ciphertext: Readable): Promise<void> {
    const layout = this.layout;
    if (!validPortalId(item.id)) throw new NotFoundError(`invalid portal item id ${item.id}`);
    const temp = tempName(layout.tmp, `${item.id}.portal`);
    const out = createWriteStream(temp, { flags: 'wx', mode: 0o600, flush: true });
    let firstFailure: 'stream' | 'disk' | undefined;
    ciphertext.once('error', () => (firstFailure ??= 'stream'));
    out.once('error', () => (firstFailure ??= 'disk'));
    try {
      await pipeline(ciphertext, out);
    } catch (error) {
      if (!out.closed) await new Promise<void>((resolve) => out.once('close', () => resolve()));
      await fs.rm(temp, { force: true });
      if (firstFailure === 'disk') throw error;
      throw new EnqueueAbortedError(`portal copy ${item.id} not stored: ${(error as Error).message}`, { cause: error });
    }
    await this.locked(item.id, async () => {
      const previous = await this.readItem(item.id);
      try {
        // Ciphertext before the record: a crash in between leaves a blob without a record, never the reverse.
        await fs.rename(temp, layout.portalBlobFile(item.id));
        await fsyncDir(layout.portalBlobs);
      } catch (error) {
        await fs.rm(temp, { force: true });
        throw error;
      }
      // The record is taken as it is now that the stream has ended (fields computed while streaming count).
      await this.writeItem({ ...item }, previous?.tokenHash);
    });
  }

  getPortalItem(id: string): Promise<PortalItem | undefined> {
    return this.readItem(id);
  }

  async findPortalItemByToken(tokenHash: string): Promise<PortalItem | undefined> {
    if (!/^[0-9a-f]{64}$/.test(tokenHash)) return undefined;
    let id: string;
    try {
      id = (await fs.readFile(this.layout.portalTokenFile(tokenHash), 'utf8')).trim();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const item = await this.readItem(id);
    // The record is the truth: an index entry a crash left behind finds nothing.
    return item?.tokenHash === tokenHash ? item : undefined;
  }

  async listPortalItems(filter: PortalFilter = {}): Promise<PortalItem[]> {
    const ids = (await fs.readdir(this.layout.portalItems)).map(idOfJsonName).filter((id): id is string => id !== undefined && validPortalId(id));
    const items = (await Promise.all(ids.map((id) => this.readItem(id).catch(() => undefined)))).filter((i): i is PortalItem => i !== undefined);
    return page(items.filter((i) => matchesPortalFilter(i, filter)).sort(byCreation), filter);
  }

  async updatePortalItem(id: string, mutate: (item: PortalItem) => PortalItem): Promise<PortalItem> {
    if (!validPortalId(id)) throw new NotFoundError(`portal item ${id} not found`);
    return this.locked(id, async () => {
      const current = await this.readItem(id);
      if (!current) throw new NotFoundError(`portal item ${id} not found`);
      const next: PortalItem = { ...mutate(structuredClone(current)), id, version: current.version + 1 };
      await this.writeItem(next, current.tokenHash);
      return next;
    });
  }

  async openPortalCiphertext(id: string): Promise<Readable> {
    if (!validPortalId(id)) throw new NotFoundError(`portal item ${id} not found`);
    try {
      return (await fs.open(this.layout.portalBlobFile(id), 'r')).createReadStream();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`portal item ${id} has no ciphertext`);
      throw error;
    }
  }

  async shredPortalCopy(id: string): Promise<void> {
    if (!validPortalId(id)) throw new NotFoundError(`portal item ${id} not found`);
    await this.locked(id, async () => {
      const current = await this.readItem(id);
      if (current && (current.kid !== null || current.wrappedKey !== null || current.sealed !== null)) {
        // The wrapped key goes first (durably): from then on the ciphertext is unreadable, whatever happens next.
        await this.writeItem({ ...shreddedItem(current), version: current.version + 1 }, current.tokenHash);
      }
      await removeFile(this.layout.portalBlobFile(id));
    });
  }

  async appendPortalEvent(itemId: string, input: PortalEventInput): Promise<PortalEvent> {
    if (!validPortalId(itemId)) throw new NotFoundError(`portal item ${itemId} not found`);
    const file = this.layout.portalEventsFile(itemId);
    return this.locked(itemId, async () => {
      const { events, validLength, size } = await readTrail(file, itemId);
      // A line cut short by a crash was never acknowledged: drop it before appending.
      if (validLength < size) await fs.truncate(file, validLength);
      const event = chainPortalEvent(itemId, events.at(-1), input);
      const handle = await fs.open(file, 'a', 0o600);
      try {
        await handle.appendFile(`${JSON.stringify(event)}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      if (size === 0) await fsyncDir(this.layout.portalEvents);
      return event;
    });
  }

  async portalEvents(itemId: string): Promise<PortalEvent[]> {
    if (!validPortalId(itemId)) return [];
    return (await readTrail(this.layout.portalEventsFile(itemId), itemId)).events;
  }
}

/** The events of a trail file, and how many of its bytes are complete lines. */
async function readTrail(file: string, itemId: string): Promise<{ events: PortalEvent[]; validLength: number; size: number }> {
  let data: Buffer;
  try {
    data = await fs.readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { events: [], validLength: 0, size: 0 };
    throw error;
  }
  const validLength = data.lastIndexOf(0x0a) + 1;
  const events = data
    .subarray(0, validLength)
    .toString('utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line, i) => parsePortalEvent(itemId, i + 1, line));
  return { events, validLength, size: data.length };
}
