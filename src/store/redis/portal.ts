import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { byCreation, chainPortalEvent, matchesPortalFilter, parsePortalEvent, shreddedItem, validPortalId } from '../portal-chain';
import { page } from '../records';
import type { PortalStore } from '../roles';
import { NotFoundError, StoreError, type PortalEvent, type PortalEventInput, type PortalFilter, type PortalItem } from '../types';
import { readBlob, uploadBlob } from './blobs';
import { BATCH, type RedisCore } from './core';
import { scriptOutcome } from './scripts';

/** Compare-and-set rounds before giving up (each lost round means another writer succeeded). */
const MAX_CAS_ATTEMPTS = 200;

function pause(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(2 + attempt, 20)));
}

/**
 * Portal copies in Redis: the record as a JSON string changed by compare-and-set (UPDATE_PORTAL), the
 * ciphertext as a string streamed in by APPEND and read back by GETRANGE, the token index as two hashes kept
 * by the scripts, and each item's trail as a list appended only at the length its chain was computed from.
 */
export class RedisPortalStore implements PortalStore {
  constructor(private readonly core: RedisCore) {}

  async putPortalCopy(item: PortalItem, ciphertext: Readable): Promise<void> {
    const { redis, keys } = this.core;
    if (!validPortalId(item.id)) throw new NotFoundError(`invalid portal item id ${item.id}`);
    const upload = keys.portalUpload(item.id, randomBytes(6).toString('hex'));
    try {
      const { size } = await uploadBlob(redis, upload, ciphertext, `portal copy ${item.id}`);
      // The record is taken as it is now that the stream has ended (fields computed while streaming count).
      const record: PortalItem = { ...item };
      await this.core.confirmed(
        'sgPutPortal',
        upload,
        keys.portalBlob(item.id),
        keys.portalItem(item.id),
        keys.portalAll(),
        keys.portalTokens(),
        keys.portalItemTokens(),
        item.id,
        JSON.stringify(record),
        record.createdAt,
        size,
        record.tokenHash ?? '',
      );
    } catch (error) {
      await redis.del(upload).catch(() => undefined);
      throw error;
    }
  }

  async getPortalItem(id: string): Promise<PortalItem | undefined> {
    if (!validPortalId(id)) return undefined;
    const raw = await this.core.redis.get(this.core.keys.portalItem(id));
    return raw ? (JSON.parse(raw) as PortalItem) : undefined;
  }

  async findPortalItemByToken(tokenHash: string): Promise<PortalItem | undefined> {
    if (!/^[0-9a-f]{64}$/.test(tokenHash)) return undefined;
    const id = await this.core.redis.hget(this.core.keys.portalTokens(), tokenHash);
    if (!id) return undefined;
    const item = await this.getPortalItem(id);
    return item?.tokenHash === tokenHash ? item : undefined;
  }

  async listPortalItems(filter: PortalFilter = {}): Promise<PortalItem[]> {
    const { redis, keys } = this.core;
    const ids = await redis.zrange(keys.portalAll(), '0', '-1');
    const items: PortalItem[] = [];
    for (let i = 0; i < ids.length; i += BATCH) {
      const raws = await redis.mget(ids.slice(i, i + BATCH).map((id) => keys.portalItem(id)));
      for (const raw of raws) if (raw) items.push(JSON.parse(raw) as PortalItem);
    }
    return page(items.filter((item) => matchesPortalFilter(item, filter)).sort(byCreation), filter);
  }

  async updatePortalItem(id: string, mutate: (item: PortalItem) => PortalItem): Promise<PortalItem> {
    const { redis, keys } = this.core;
    if (!validPortalId(id)) throw new NotFoundError(`portal item ${id} not found`);
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const raw = await redis.get(keys.portalItem(id));
      if (!raw) throw new NotFoundError(`portal item ${id} not found`);
      const current = JSON.parse(raw) as PortalItem;
      const next: PortalItem = { ...mutate(JSON.parse(raw) as PortalItem), id, version: current.version + 1 };
      const reply = await redis.sgUpdatePortal(keys.portalItem(id), keys.portalTokens(), keys.portalItemTokens(), id, raw, JSON.stringify(next), next.tokenHash ?? '');
      if (scriptOutcome(reply, { portalItemId: id }) === 'done') return next;
      await pause(attempt);
    }
    throw new StoreError('contention', `portal item ${id} kept changing; gave up after ${MAX_CAS_ATTEMPTS} attempts`);
  }

  async openPortalCiphertext(id: string): Promise<Readable> {
    if (!validPortalId(id)) throw new NotFoundError(`portal item ${id} not found`);
    const redis = this.core.redis;
    const key = this.core.keys.portalBlob(id);
    const [[, exists], [, length]] = (await redis.pipeline().exists(key).strlen(key).exec()) as [[Error | null, number], [Error | null, number]];
    if (exists === 0) throw new NotFoundError(`portal item ${id} has no ciphertext`);
    return readBlob(redis, key, length, `ciphertext of portal item ${id}`, (error) => this.core.classify(error));
  }

  async shredPortalCopy(id: string): Promise<void> {
    const { redis, keys } = this.core;
    if (!validPortalId(id)) throw new NotFoundError(`portal item ${id} not found`);
    const current = await this.getPortalItem(id);
    if (current && (current.kid !== null || current.wrappedKey !== null || current.sealed !== null)) {
      // The wrapped key goes first: from then on the ciphertext is unreadable, whatever happens next.
      await this.updatePortalItem(id, shreddedItem);
    }
    await redis.del(keys.portalBlob(id));
  }

  async appendPortalEvent(itemId: string, input: PortalEventInput): Promise<PortalEvent> {
    const { redis, keys } = this.core;
    if (!validPortalId(itemId)) throw new NotFoundError(`portal item ${itemId} not found`);
    const list = keys.portalEvents(itemId);
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const [[, length], [, last]] = (await redis.pipeline().llen(list).lrange(list, -1, -1).exec()) as [[Error | null, number], [Error | null, string[]]];
      const previous = last.length > 0 ? parsePortalEvent(itemId, length, last[0]!) : undefined;
      if ((previous?.seq ?? 0) !== length) throw new StoreError('internal', `portal trail of ${itemId} has ${length} entries but its last is number ${String(previous?.seq)}`);
      const event = chainPortalEvent(itemId, previous, input);
      const reply = await this.core.confirmed('sgAppendPortalEvent', list, length, JSON.stringify(event));
      if (scriptOutcome(reply, { portalItemId: itemId }) === 'done') return event;
      await pause(attempt);
    }
    throw new StoreError('contention', `portal trail of ${itemId} kept growing; gave up after ${MAX_CAS_ATTEMPTS} attempts`);
  }

  async portalEvents(itemId: string): Promise<PortalEvent[]> {
    if (!validPortalId(itemId)) return [];
    const raws = await this.core.redis.lrange(this.core.keys.portalEvents(itemId), 0, -1);
    return raws.map((raw, i) => parsePortalEvent(itemId, i + 1, raw));
  }
}
