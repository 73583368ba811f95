import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FALLBACK_STATES, FallbackService, isFallbackError, isFallbackState, type FallbackBackend } from '../../src/fallback';
import { silentLogger } from '../../src/log/logger';
import { FileStore } from '../../src/store/file/file-store';
import { InvalidStateError, LeaseLostError, NotFoundError, StoreError, type FallbackItem } from '../../src/store/types';
import { chunked, evidence, newMessage, readAll } from '../store/contract';

/** The fallback module over a real file store in a temp dir (no sockets). */

let dir: string;
let store: FileStore;
let fallback: FallbackService;
const BODY = Buffer.from('Subject: lab results\r\n\r\nsee attached\r\n');

beforeEach(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-fallback-'));
  store = new FileStore({ path: dir, keepFinished: 86_400_000, logger: silentLogger() });
  await store.open();
  fallback = new FallbackService(store);
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Queues a message and diverts its recipients in one delivery attempt; returns the message id and items. */
async function divert(addresses: string[], reason = 'starttls-not-offered'): Promise<{ queueId: string; items: FallbackItem[] }> {
  const record = await store.enqueue(newMessage(addresses, { receivedAt: Date.now() - 60_000 }), chunked(BODY), { messageId: '<m@clinic.test>' });
  const [claimed] = await store.claimDue('w1', 1, 60_000);
  await store.completeJob(claimed!.job.id, 'w1', {
    recipients: addresses.map((address) => ({ address, outcome: 'diverted' as const, evidence: evidence('diverted', reason), divertReason: `${reason}-shown` })),
  });
  const items = (await fallback.list()).filter((i) => i.queueId === record.id);
  return { queueId: record.id, items };
}

async function codeOf(pending: Promise<unknown>): Promise<string> {
  const error = await pending.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(StoreError);
  return (error as StoreError).code;
}

test('a diverted recipient becomes a ready item with the reason shown to portals and its evidence', async () => {
  const { queueId, items } = await divert(['a@weak.test']);
  expect(items).toHaveLength(1);
  expect(items[0]).toMatchObject({ queueId, recipient: 'a@weak.test', from: 'sender@clinic.test', messageId: '<m@clinic.test>', reason: 'starttls-not-offered-shown', state: 'ready' });
  expect(items[0]!.evidence.map((e) => e.reason)).toEqual(['starttls-not-offered']);
  expect(await fallback.show(items[0]!.id)).toEqual(items[0]);
});

test('page filters by state and pages, with the total before paging', async () => {
  await divert(['a@weak.test', 'b@weak.test', 'c@weak.test']);
  const [first] = await fallback.claim('portal-a', 1, 60_000);
  expect((await fallback.page({ limit: 2, offset: 0 })).items).toHaveLength(2);
  expect((await fallback.page({ limit: 2, offset: 0 })).total).toBe(3);
  expect((await fallback.page({ limit: 10, offset: 2 })).items).toHaveLength(1);
  const claimed = await fallback.page({ state: 'claimed', limit: 10, offset: 0 });
  expect(claimed).toEqual({ items: [expect.objectContaining({ id: first!.id, claim: expect.objectContaining({ owner: 'portal-a' }) })], total: 1 });
  expect((await fallback.page({ state: 'ready', limit: 10, offset: 0 })).total).toBe(2);
});

test('claim, body and ack: only the claim owner hands an item over', async () => {
  const { queueId, items } = await divert(['a@weak.test']);
  const [claimed] = await fallback.claim('portal-a', 10, 60_000);
  expect(claimed).toMatchObject({ id: items[0]!.id, state: 'claimed' });
  const { item, body } = await fallback.openBody(claimed!.id);
  expect(item.queueId).toBe(queueId);
  expect((await readAll(body)).equals(BODY)).toBe(true);
  const lost = fallback.ack(claimed!.id, 'portal-b');
  await expect(lost).rejects.toBeInstanceOf(LeaseLostError);
  expect(await codeOf(fallback.ack(claimed!.id, 'portal-b'))).toBe('lease-lost');
  await fallback.ack(claimed!.id, 'portal-a');
  expect(await fallback.show(claimed!.id)).toMatchObject({ state: 'acked' });
});

test('release puts the recipient back into delivery and drops the item; refused once handed over', async () => {
  const { queueId, items } = await divert(['a@weak.test', 'b@weak.test']);
  const [a, b] = items;
  const released = await fallback.release(a!.id);
  expect(released.id).toBe(a!.id);
  expect(await fallback.find(a!.id)).toBeUndefined();
  const job = (await store.getMessage(queueId))!.jobs[0]!;
  expect(job.state).toBe('queued');
  expect(job.recipients.map((r) => [r.address, r.state])).toEqual([
    ['a@weak.test', 'pending'],
    ['b@weak.test', 'diverted'],
  ]);

  await fallback.claim('portal-a', 10, 60_000);
  await fallback.ack(b!.id, 'portal-a');
  const refused = await fallback.release(b!.id).catch((err: unknown) => err);
  expect(refused).toBeInstanceOf(InvalidStateError);
  expect((refused as StoreError).code).toBe('handed-over');
  expect((refused as Error).message).toBe(`fallback item ${b!.id} was already handed over to the portal; it cannot be released`);
  expect(await fallback.show(b!.id)).toMatchObject({ state: 'acked' });
});

test('an item acknowledged between the check and the release is refused by the store with the same code', async () => {
  const { items } = await divert(['a@weak.test']);
  const id = items[0]!.id;
  const stale = await fallback.show(id);
  await fallback.claim('portal-a', 10, 60_000);
  await fallback.ack(id, 'portal-a');
  // A reader that still sees the item as it was before the ack.
  const racing: FallbackBackend = {
    listFallback: (filter) => store.listFallback(filter),
    getFallback: async () => stale,
    claimFallback: (owner, limit, leaseMs, now) => store.claimFallback(owner, limit, leaseMs, now),
    ackFallback: (itemId, owner) => store.ackFallback(itemId, owner),
    releaseFallback: (itemId) => store.releaseFallback(itemId),
    deleteFallback: (itemId) => store.deleteFallback(itemId),
    openBody: (queueId) => store.openBody(queueId),
  };
  expect(await codeOf(new FallbackService(racing).release(id))).toBe('handed-over');
  expect(await fallback.show(id)).toMatchObject({ state: 'acked' });
});

test('delete drops an item in any state and returns it as it was', async () => {
  const { items } = await divert(['a@weak.test']);
  const deleted = await fallback.delete(items[0]!.id);
  expect(deleted).toEqual(items[0]);
  expect(await fallback.list()).toEqual([]);
});

test('unknown items are not-found for every action, with the message admins see', async () => {
  const id = '01ARZ3NDEKTSV4RRFFQ69G5FAV.0123456789abcdef';
  for (const act of [() => fallback.show(id), () => fallback.release(id), () => fallback.delete(id), () => fallback.openBody(id), () => fallback.ack(id, 'p')]) {
    const error = await act().catch((err: unknown) => err);
    expect(error).toBeInstanceOf(NotFoundError);
    expect(isFallbackError(error, 'not-found')).toBe(true);
  }
  await expect(fallback.show(id)).rejects.toThrow(`no fallback item ${id}`);
  expect(await fallback.find(id)).toBeUndefined();
});

test('the body of an item whose message was deleted is not-found', async () => {
  const { queueId, items } = await divert(['a@weak.test']);
  await store.deleteMessage(queueId);
  expect(await codeOf(fallback.openBody(items[0]!.id))).toBe('not-found');
});

test('states and error predicates', () => {
  expect(FALLBACK_STATES).toEqual(['ready', 'claimed', 'acked']);
  expect(isFallbackState('claimed')).toBe(true);
  expect(isFallbackState('gone')).toBe(false);
  expect(isFallbackError(new InvalidStateError('x', 'handed-over'), 'handed-over')).toBe(true);
  expect(isFallbackError(new InvalidStateError('x'), 'handed-over')).toBe(false);
  expect(isFallbackError(new Error('fallback item x was already handed over'))).toBe(false);
});
