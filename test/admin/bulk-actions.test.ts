import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { applyBulkAction, releaseFallbackSelection, type PortalOwner } from '../../src/admin/actions';
import { buildAdminApp } from '../../src/admin/server';
import { findMessages, recipientOutcomes } from '../../src/admin/views';
import { parseConfig } from '../../src/config/load';
import { FallbackService } from '../../src/fallback';
import { createLogger, silentLogger } from '../../src/log/logger';
import type { PolicyRuntime } from '../../src/policy';
import { FileStore } from '../../src/store/file/file-store';
import { RedisStore } from '../../src/store/redis/redis-store';
import { NotFoundError, type PortalState, type RecipientOutcome, type Store } from '../../src/store/types';
import { chunked, evidence, newMessage } from '../store/contract';
import { startRedis, type RedisHandle } from '../support/redis-server';

/**
 * Bulk actions by selection on both stores (a real redis-server for Redis): a selection acts on exactly the
 * messages and jobs it names, skips the rest with reasons; fallback release by domain; audit by recipient;
 * delete keeps the final outcomes as evidence. Also the API routes over the same store.
 */

const KEEP = 7 * 86_400_000;
let redis: RedisHandle;
let dir: string;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.stop();
});

const backends: Array<[string, () => Store]> = [
  ['file', () => new FileStore({ path: path.join(dir, 'queue'), keepFinished: KEEP, logger: silentLogger() })],
  [
    'redis',
    () =>
      new RedisStore({
        url: redis.url,
        prefix: `${redis.prefix}-${path.basename(dir)}`,
        keepFinished: KEEP,
        onWeakDurability: 'warn',
        logger: silentLogger(),
      }),
  ],
];

describe.each(backends)('bulk actions on the %s store', (_name, make) => {
  let store: Store;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-bulk-'));
    store = make();
    await store.open();
  });

  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Enqueues a message and records one attempt with `outcomes` per recipient (deferred ones wait an hour). */
  async function message(outcomes: Record<string, RecipientOutcome | 'none'>, from?: string): Promise<string> {
    const addresses = Object.keys(outcomes);
    const record = await store.enqueue(newMessage(addresses, from ? { from } : {}), chunked(Buffer.from('Subject: private\r\n\r\nbody\r\n')), { messageId: `<${addresses[0]}-${Math.random()}@t>` });
    for (const job of record.jobs) {
      const results = job.recipients
        .filter((r) => outcomes[r.address] !== 'none')
        .map((r) => ({ address: r.address, outcome: outcomes[r.address] as RecipientOutcome, evidence: evidence(outcomes[r.address] as RecipientOutcome, `${outcomes[r.address]}-reason`) }));
      if (results.length === 0) continue;
      const claimed = await claim(job.id);
      await store.completeJob(claimed, 'w1', { recipients: results, retryAt: Date.now() + 3_600_000 });
    }
    return record.id;
  }

  /** Leases one specific job (others due at the same time are handed back). */
  async function claim(jobId: string): Promise<string> {
    for (let i = 0; i < 20; i++) {
      const claimed = await store.claimDue('w1', 50, 60_000);
      for (const c of claimed) if (c.job.id !== jobId) await store.releaseLease(c.job.id, 'w1');
      if (claimed.some((c) => c.job.id === jobId)) return jobId;
    }
    throw new Error(`could not lease ${jobId}`);
  }

  const jobStates = async (id: string) => Object.fromEntries((await store.getMessage(id))!.jobs.map((j) => [j.domain, j.state]));

  test('hold, release and retry by domain touch exactly that domain’s jobs; others and final ones are untouched or skipped', async () => {
    const mixed = await message({ 'x@partner.example': 'deferred', 'y@other.example': 'deferred' });
    const partner = await message({ 'z@partner.example': 'deferred' });
    const other = await message({ 'w@other.example': 'deferred' });
    const done = await message({ 'q@partner.example': 'delivered' });

    const applied: string[] = [];
    const held = await applyBulkAction(store, 'hold', { domain: 'partner.example' }, (id) => void applied.push(id));
    expect(held.affected.sort()).toEqual([mixed, partner].sort());
    expect(applied.sort()).toEqual([mixed, partner].sort());
    expect(held.skipped).toEqual([{ id: done, reason: 'nothing waiting to hold (delivered)' }]);
    expect(held.matched).toBe(3);
    expect(await jobStates(mixed)).toEqual({ 'partner.example': 'held', 'other.example': 'deferred' });
    expect(await jobStates(partner)).toEqual({ 'partner.example': 'held' });
    expect(await jobStates(other)).toEqual({ 'other.example': 'deferred' });

    // Nothing of other.example was held, so a release by that domain skips everything.
    const none = await applyBulkAction(store, 'release', { domain: 'other.example' });
    expect(none.affected).toEqual([]);
    expect(none.skipped.map((s) => s.id).sort()).toEqual([mixed, other].sort());

    const released = await applyBulkAction(store, 'release', { domain: 'partner.example', state: 'held' });
    expect(released.affected.sort()).toEqual([mixed, partner].sort());
    expect(await jobStates(mixed)).toEqual({ 'partner.example': 'deferred', 'other.example': 'deferred' });

    // flush: every deferred job due now, so the next claim takes all four deferred jobs.
    const flushed = await applyBulkAction(store, 'retry', { state: 'deferred' });
    expect(flushed.affected.sort()).toEqual([mixed, partner, other].sort());
    const due = await store.claimDue('w2', 50, 60_000);
    expect(due.map((c) => c.job.id).sort()).toEqual([`${mixed}/other.example`, `${mixed}/partner.example`, `${partner}/partner.example`, `${other}/other.example`].sort());

    // Now every one of them is leased: delete and retry skip them, naming the worker; the jobs are untouched.
    const refused = await applyBulkAction(store, 'delete', { sender: 'sender@clinic.test', domain: 'other.example' });
    expect(refused.affected).toEqual([]);
    expect(refused.skipped.map((s) => s.reason)).toEqual([expect.stringContaining('being delivered right now (leased by w2)'), expect.stringContaining('leased by w2')]);
    expect(await store.getMessage(other)).toBeDefined();
  });

  test('selection by recipient, sender and age', async () => {
    const drx = await message({ 'dr.x@partner.example': 'deferred' });
    await message({ 'dr.y@partner.example': 'deferred' });
    const fromB = await message({ 'dr.z@partner.example': 'deferred' }, 'b@clinic.test');
    expect((await applyBulkAction(store, 'hold', { recipient: 'DR.X@partner.example' })).affected).toEqual([drx]);
    expect((await applyBulkAction(store, 'hold', { sender: 'b@clinic.test' })).affected).toEqual([fromB]);
    expect((await applyBulkAction(store, 'hold', { olderThan: 3_600_000 })).matched).toBe(0);
    expect((await applyBulkAction(store, 'hold', { all: true })).affected).toHaveLength(1);
  });

  test('delete keeps the final outcomes as evidence (audit still answers); pending recipients and the body go', async () => {
    const done = await message({ 'q@partner.example': 'delivered' });
    const partial = await message({ 'a@done.example': 'bounced', 'b@wait.example': 'deferred' });
    const fresh = await message({ 'c@new.example': 'none' });

    const outcome = await applyBulkAction(store, 'delete', { all: true });
    expect(outcome.affected.sort()).toEqual([done, partial, fresh].sort());

    expect(await store.getMessage(fresh)).toBeUndefined();
    const kept = (await store.getMessage(done))!;
    expect(kept.deletedAt).toEqual(expect.any(Number));
    expect(kept.bodyRemoved).toBe(true);
    await expect(store.openBody(done)).rejects.toBeInstanceOf(NotFoundError);
    expect((await findMessages(store, done))[0]!.jobs[0]!.recipients[0]!.history[0]!.outcome).toBe('delivered');

    const partly = (await store.getMessage(partial))!;
    expect(partly.jobs.map((j) => [j.domain, j.state])).toEqual([['done.example', 'bounced']]);
    // The pending part is gone: never due again.
    expect((await store.claimDue('w3', 50, 60_000, Date.now() + 7_200_000)).map((c) => c.job.messageId)).not.toContain(partial);

    // Out of listings and actions, but found by Message-ID and by recipient.
    expect((await store.listMessages()).map((m) => m.id)).toEqual([]);
    expect(await findMessages(store, kept.headers.messageId!)).toHaveLength(1);
    const outcomes = await recipientOutcomes(store, 'q@partner.example');
    expect(outcomes).toEqual([expect.objectContaining({ queueId: done, state: 'delivered', deletedAt: expect.any(String), entries: [expect.objectContaining({ outcome: 'delivered' })] })]);
    await expect(store.deleteMessage(done)).rejects.toBeInstanceOf(NotFoundError);

    // Retention removes the evidence once queue.keepFinished has passed.
    await store.sweep(Date.now() + KEEP + 60_000);
    expect(await store.getMessage(done)).toBeUndefined();
    expect(await store.getMessage(partial)).toBeUndefined();
  });

  test('fallback list filters and paging; release by domain releases exactly that domain’s items', async () => {
    const m1 = await message({ 'a@partner.example': 'diverted', 'b@partner.example': 'diverted' });
    const m2 = await message({ 'c@other.example': 'diverted' });
    const fallback = new FallbackService(store);
    expect((await fallback.list({ domain: 'partner.example' })).map((i) => i.recipient).sort()).toEqual(['a@partner.example', 'b@partner.example']);
    expect((await fallback.list({ recipient: 'C@other.example' })).map((i) => i.queueId)).toEqual([m2]);
    expect(await fallback.list({ since: Date.now() + 60_000 })).toEqual([]);
    const page1 = await fallback.page({ domain: 'partner.example', limit: 1, offset: 0 });
    const page2 = await fallback.page({ domain: 'partner.example', limit: 1, offset: 1 });
    expect({ total: page2.total, recipients: [...page1.items, ...page2.items].map((i) => i.recipient).sort() }).toEqual({ total: 2, recipients: ['a@partner.example', 'b@partner.example'] });

    const seen: string[] = [];
    const outcome = await releaseFallbackSelection(store, { domain: 'partner.example' }, undefined, 'cli:test', (e) => void seen.push(e.recipient));
    expect(outcome.released.map((r) => [r.recipient, r.via]).sort()).toEqual([
      ['a@partner.example', 'delivery'],
      ['b@partner.example', 'delivery'],
    ]);
    expect(seen.sort()).toEqual(['a@partner.example', 'b@partner.example']);
    expect(outcome.skipped).toEqual([]);
    expect((await fallback.list()).map((i) => i.recipient)).toEqual(['c@other.example']);
    const back = (await store.getMessage(m1))!;
    expect(back.jobs[0]!.state).toBe('queued');
    expect(back.jobs[0]!.recipients.map((r) => r.state)).toEqual(['pending', 'pending']);
    expect((await store.getMessage(m2))!.jobs[0]!.state).toBe('diverted');
  });

  test('fallback release by domain with the built-in portal: handed-over copies are released, leftovers withdrawn, hand-overs in progress skipped', async () => {
    await message({ 'a@partner.example': 'diverted', 'b@partner.example': 'diverted', 'c@partner.example': 'diverted', 'd@partner.example': 'diverted' });
    const fallback = new FallbackService(store);
    const byRecipient = (await fallback.list({ domain: 'partner.example' })).sort((x, y) => x.recipient.localeCompare(y.recipient));
    const [a, b, c, d] = byRecipient;
    // a: handed over (acked) with a live copy; b: ready, but an interrupted hand-over left a copy; c: being handed over now;
    // d: handed over to an external portal (acked, no built-in copy).
    const claimed = await store.claimFallback('portal:relay-1', 4, 60_000);
    expect(claimed).toHaveLength(4);
    await store.ackFallback(a!.id, 'portal:relay-1');
    await store.ackFallback(d!.id, 'portal:relay-1');
    await store.claimFallback('other', 1, 60_000, Date.now() + 120_000); // b's claim expired and went to another owner
    const copies = new Map<string, PortalState>([
      [a!.id, 'notified'],
      [b!.id, 'stored'],
    ]);
    const calls: string[] = [];
    const portal: PortalOwner = {
      show: async (id) => {
        const state = copies.get(id);
        if (!state) throw new NotFoundError(`no portal item ${id}`);
        return { item: { id, queueId: '', jobId: '', state } as never, events: [] };
      },
      release: async (id, actor) => {
        calls.push(`release ${id} ${actor}`);
        return { item: {} as never, queueId: 'NEWQUEUEID' };
      },
      purge: async (id, actor) => {
        calls.push(`purge ${id} ${actor}`);
        return {} as never;
      },
    };
    const outcome = await releaseFallbackSelection(store, { domain: 'partner.example' }, portal, 'cli:test');
    outcome.released.sort((x, y) => x.recipient.localeCompare(y.recipient));
    outcome.skipped.sort((x, y) => x.reason.localeCompare(y.reason));
    calls.sort();
    expect(outcome.released).toEqual([
      { id: a!.id, queueId: a!.queueId, recipient: 'a@partner.example', via: 'portal', newQueueId: 'NEWQUEUEID' },
      { id: b!.id, queueId: b!.queueId, recipient: 'b@partner.example', via: 'delivery', withdrawn: true },
    ]);
    expect(calls).toEqual([`purge ${b!.id} cli:test`, `release ${a!.id} cli:test`]);
    expect(outcome.skipped).toEqual([
      { id: c!.id, reason: expect.stringContaining('being handed over to the built-in portal right now (portal:relay-1)') },
      { id: d!.id, reason: expect.stringContaining('handed over to an external portal') },
    ]);
    // Untouched: c still claimed by the portal, d still acked.
    expect((await fallback.list({ domain: 'partner.example' })).map((i) => [i.recipient, i.state]).sort()).toEqual([
      ['a@partner.example', 'acked'],
      ['c@partner.example', 'claimed'],
      ['d@partner.example', 'acked'],
    ]);
  });

  test('API: bulk action by selection, empty selection refused, flush, audit by recipient, fallback list paging', async () => {
    const TOKEN = 'bulk-token-0123456789';
    const auth = { authorization: `Bearer ${TOKEN}` };
    const config = parseConfig({ listeners: [{ name: 'smtp', port: 0, tls: 'starttls', auth: 'required' }], admin: { tokens: [{ name: 'ops', token: TOKEN }] }, audit: { file: null } }, {}, '/tmp');
    const lines: string[] = [];
    const logger = createLogger('info', new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }));
    const admin = await buildAdminApp({ config, store, policy: {} as PolicyRuntime, logger });
    try {
      const partner = await message({ 'dr.x@partner.example': 'deferred' });
      const other = await message({ 'y@other.example': 'deferred' });
      await message({ 'f1@weak.example': 'diverted', 'f2@weak.example': 'diverted', 'f3@weak.example': 'diverted' });

      const empty = await admin.inject({ method: 'POST', url: '/api/v1/queue/actions/hold', headers: auth, payload: { selection: {} } });
      expect(empty.statusCode).toBe(400);

      const dry = await admin.inject({ method: 'POST', url: '/api/v1/queue/actions/hold', headers: auth, payload: { selection: { domain: 'partner.example' }, dryRun: true } });
      expect(dry.json()).toMatchObject({ dryRun: true, affected: [partner] });
      expect(await jobStates(partner)).toEqual({ 'partner.example': 'deferred' });

      const held = await admin.inject({ method: 'POST', url: '/api/v1/queue/actions/hold', headers: auth, payload: { selection: { domain: 'partner.example' } } });
      expect(held.statusCode).toBe(200);
      expect(held.json()).toEqual({ action: 'hold', selection: { domain: 'partner.example' }, matched: 1, affected: [partner], skipped: [] });
      expect(await jobStates(other)).toEqual({ 'other.example': 'deferred' });
      const actions = lines
        .map((l) => JSON.parse(l) as { event?: string; admin?: Record<string, unknown> })
        .filter((l) => l.event === 'admin-action')
        .map((l) => l.admin);
      expect(actions).toEqual([
        { actor: 'ops', action: 'queue-hold', id: partner, bulk: true },
        { actor: 'ops', action: 'queue-bulk-hold', id: 'selection', selection: { domain: 'partner.example' }, matched: 1, affected: 1, skipped: 0 },
      ]);

      const byRecipient = await admin.inject({ method: 'GET', url: '/api/v1/queue?recipient=Y@other.example', headers: auth });
      expect(byRecipient.json()).toMatchObject({ total: 1, items: [{ id: other }] });

      const flush = await admin.inject({ method: 'POST', url: '/api/v1/queue/flush', headers: auth });
      expect(flush.json()).toMatchObject({ action: 'retry', selection: { state: 'deferred' }, affected: [other] });

      const audit = await admin.inject({ method: 'GET', url: `/api/v1/audit?recipient=${encodeURIComponent('Dr.X@partner.example')}&since=1h`, headers: auth });
      expect(audit.statusCode).toBe(200);
      expect(audit.json()).toMatchObject({ recipient: 'Dr.X@partner.example', items: [{ queueId: partner, state: 'held', entries: [{ outcome: 'deferred', reason: 'deferred-reason' }] }] });
      expect((await admin.inject({ method: 'GET', url: '/api/v1/audit?recipient=nobody@partner.example', headers: auth })).json()).toMatchObject({ items: [] });
      expect((await admin.inject({ method: 'GET', url: '/api/v1/audit?recipient=a@b&since=soon', headers: auth })).statusCode).toBe(400);

      const page = await admin.inject({ method: 'GET', url: '/api/v1/fallback?domain=weak.example&limit=2&offset=0', headers: auth });
      expect(page.json()).toMatchObject({ total: 3, nextOffset: 2, items: [{ recipient: 'f1@weak.example' }, { recipient: 'f2@weak.example' }] });
      const last = await admin.inject({ method: 'GET', url: '/api/v1/fallback?recipient=f3@weak.example&since=1h', headers: auth });
      expect(last.json()).toMatchObject({ total: 1, nextOffset: null, items: [{ recipient: 'f3@weak.example' }] });

      const released = await admin.inject({ method: 'POST', url: '/api/v1/fallback/actions/release', headers: auth, payload: { selection: { domain: 'weak.example' } } });
      expect(released.statusCode).toBe(200);
      expect(released.json()).toMatchObject({ matched: 3, skipped: [] });
      expect(released.json().released).toHaveLength(3);
      expect((await admin.inject({ method: 'POST', url: '/api/v1/fallback/actions/release', headers: auth, payload: { selection: {} } })).statusCode).toBe(400);
    } finally {
      await admin.close();
    }
  });
});
