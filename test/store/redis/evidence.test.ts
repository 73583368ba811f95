import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { silentLogger } from '../../../src/log/logger';
import { verifyEvidence } from '../../../src/store/evidence-chain';
import { RedisStore } from '../../../src/store/redis/redis-store';
import type { EvidenceQuery, EvidenceRecord, EvidenceRecordInput } from '../../../src/store/types';
import { startRedis, type RedisHandle } from '../../support/redis-server';

/*
 * The Redis evidence log beyond the shared contract: one chain however many store instances or processes append,
 * the compare-and-set retry and its idempotence, tampering done in Redis itself, damaged entries under queries,
 * prune of the indexes, and a Redis restart between appends.
 */

const DAY = 86_400_000;
const T0 = Date.parse('2026-11-02T09:00:00Z');

let redis: RedisHandle;
let client: Redis;
const external = Boolean(process.env.SEALGATE_TEST_REDIS_URL);
const ownServerTest = external ? test.skip : test;
const opened: RedisStore[] = [];
const folders: string[] = [];

beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url, { maxRetriesPerRequest: 3 });
});

afterEach(async () => {
  for (const store of opened.splice(0)) await store.close();
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
});

interface Clock {
  at: number;
}

function freshPrefix(): string {
  return `${redis.prefix}:${randomBytes(4).toString('hex')}`;
}

async function openStore(prefix: string, options: { clock?: Clock; anchorCopy?: string } = {}): Promise<RedisStore> {
  const clock = options.clock;
  const store = new RedisStore({
    url: redis.url,
    prefix,
    keepFinished: 7 * DAY,
    onWeakDurability: external ? 'warn' : 'refuse',
    logger: silentLogger(),
    ...(clock ? { now: () => clock.at } : {}),
    ...(options.anchorCopy ? { anchorCopy: options.anchorCopy } : {}),
  });
  await store.open();
  opened.push(store);
  return store;
}

function input(n: number, at: number, overrides: Partial<EvidenceRecordInput> = {}): EvidenceRecordInput {
  return {
    kind: 'recipient-outcome',
    at,
    queueId: `Q${n % 7}`,
    messageId: `<m${n % 5}@clinic.test>`,
    recipient: `Patient${n}@Partner${n % 3}.Example`,
    sender: n % 2 === 0 ? 'App@Clinic.test' : '',
    actor: 'relay',
    data: { outcome: 'delivered', tls: 'TLSv1.3', n },
    ...overrides,
  };
}

async function collect(store: RedisStore, query: EvidenceQuery): Promise<EvidenceRecord[]> {
  const out: EvidenceRecord[] = [];
  for await (const record of store.queryEvidence(query)) out.push(record);
  return out;
}

/** Three days of records (4, 3 and 2), the first two sealed by the appends that opened the next day. */
async function threeDays(store: RedisStore, clock: Clock): Promise<EvidenceRecord[]> {
  const all: EvidenceRecord[] = [];
  let n = 0;
  for (const [day, count] of [
    [0, 4],
    [1, 3],
    [2, 2],
  ] as const) {
    clock.at = T0 + day * DAY;
    for (let i = 0; i < count; i++, n++) all.push(...(await store.appendEvidence([input(n, clock.at - 1000 + n)])));
  }
  return all;
}

function evidenceKey(prefix: string, ...parts: string[]): string {
  return [prefix, 'evidence', `{${prefix}-evidence}`, ...parts].join(':');
}

test('appends, looks up by every index and by time, and seals each day as the next one starts', async () => {
  const prefix = freshPrefix();
  const clock = { at: T0 };
  const anchorCopy = mkdtempSync(path.join(os.tmpdir(), 'sealgate-anchors-'));
  folders.push(anchorCopy);
  const store = await openStore(prefix, { clock, anchorCopy });
  const all = await threeDays(store, clock);

  expect(all.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  expect(await store.evidenceDays()).toEqual(['2026-11-02', '2026-11-03', '2026-11-04']);
  expect((await store.evidenceHead())?.seq).toBe(9);
  const anchors = await store.evidenceAnchors();
  expect(anchors.map((a) => [a.day, a.firstSeq, a.lastSeq])).toEqual([
    ['2026-11-02', 1, 4],
    ['2026-11-03', 5, 7],
  ]);
  for (const anchor of anchors) expect(JSON.parse(readFileSync(path.join(anchorCopy, `${anchor.day}.json`), 'utf8'))).toEqual(anchor);
  expect(await store.readEvidenceDay('2026-11-03')).toEqual(all.slice(4, 7).map((r) => JSON.stringify(r)));

  const seqs = async (query: EvidenceQuery) => (await collect(store, query)).map((r) => r.seq);
  expect(await seqs({ queueId: 'Q1' })).toEqual(all.filter((r) => r.queueId === 'Q1').map((r) => r.seq));
  expect(await seqs({ messageId: '<m2@clinic.test>' })).toEqual([3, 8]);
  expect(await seqs({ recipient: 'PATIENT4@partner1.example' })).toEqual([5]);
  expect(await seqs({ domain: 'PARTNER0.example' })).toEqual([1, 4, 7]);
  expect(await seqs({ domain: 'partner0.example', queueId: 'Q3' })).toEqual([4]);
  expect(await seqs({ sender: '' })).toEqual([2, 4, 6, 8]);
  expect(await seqs({ sender: 'app@clinic.TEST', limit: 2 })).toEqual([1, 3]);
  expect(await seqs({ from: T0 + DAY - 1000, to: T0 + 2 * DAY - 1000 })).toEqual([5, 6, 7]);
  expect(await seqs({ domain: 'partner1.example', from: T0 + DAY - 1000 })).toEqual([5, 8]);
  expect(await seqs({ kinds: ['admin-action'] })).toEqual([]);

  // The day ends: sealing it from any relay gives one anchor, and the log verifies.
  expect(await store.sealEvidence(T0 + 3 * DAY)).toHaveLength(1);
  expect(await store.sealEvidence(T0 + 3 * DAY)).toEqual([]);
  const verified = await verifyEvidence(store);
  expect(verified).toMatchObject({ ok: true, records: 9, anchors: 3, days: 3, openDay: null });

  // Every evidence key carries the one hash tag, so a script may touch them all on a Redis Cluster.
  const keys = await client.keys(`${prefix}:*`);
  expect(keys.length).toBeGreaterThan(10);
  for (const key of keys) expect(key.startsWith(`${prefix}:evidence:{${prefix}-evidence}:`)).toBe(true);
});

test('a relay whose clock is behind never writes into a day that is sealed or before the head', async () => {
  const prefix = freshPrefix();
  const ahead = { at: T0 + DAY };
  const behind = { at: T0 };
  const a = await openStore(prefix, { clock: ahead });
  const b = await openStore(prefix, { clock: behind });
  await a.appendEvidence([input(1, ahead.at)]);
  const [late] = await b.appendEvidence([input(2, behind.at)]);
  expect(late!.day).toBe('2026-11-03');
  await a.sealEvidence(T0 + 2 * DAY);
  const [next] = await b.appendEvidence([input(3, behind.at)]);
  expect(next!.day).toBe('2026-11-04');
  expect(await verifyEvidence(a)).toMatchObject({ ok: true, records: 3 });
});

test('two store instances appending at once in small batches form one chain (compare-and-set retries)', async () => {
  const prefix = freshPrefix();
  const one = await openStore(prefix);
  const two = await openStore(prefix);
  const writer = async (store: RedisStore, name: string) => {
    const seqs: number[] = [];
    for (let sent = 0; sent < 500;) {
      const size = Math.min(500 - sent, 1 + (sent % 5));
      const stored = await store.appendEvidence(Array.from({ length: size }, (_, i) => input(sent + i, Date.now(), { queueId: `${name}${sent + i}` })));
      seqs.push(...stored.map((r) => r.seq));
      sent += size;
    }
    return seqs;
  };
  const [a, b] = await Promise.all([writer(one, 'a'), writer(two, 'b')]);
  expect(a).toHaveLength(500);
  expect(b).toHaveLength(500);
  expect([...a, ...b].sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
  expect((await one.evidenceHead())?.seq).toBe(1000);
  expect(await verifyEvidence(two)).toMatchObject({ ok: true, records: 1000 });
  // Each writer's records come back by its own queue ids, through the index.
  expect((await collect(one, { queueId: 'b499' })).map((r) => r.seq)).toEqual([b[499]]);
});

test('concurrent appends in one process share script calls (group commit) and keep their order', async () => {
  const prefix = freshPrefix();
  const store = await openStore(prefix);
  const calls = async () => {
    const stats = await client.info('commandstats');
    return [...stats.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
  };
  const before = await calls();
  const results = await Promise.all(Array.from({ length: 100 }, (_, i) => store.appendEvidence([input(i, T0 + i), input(i + 1000, T0 + i)])));
  const used = (await calls()) - before;
  expect(used).toBeLessThan(20);
  results.forEach((stored, i) => {
    expect(stored.map((r) => r.data.n)).toEqual([i, i + 1000]);
    expect(stored[1]!.seq).toBe(stored[0]!.seq + 1);
  });
  expect(await verifyEvidence(store)).toMatchObject({ ok: true, records: 200 });
});

test('a record Redis could not index is refused before anything is written', async () => {
  const prefix = freshPrefix();
  const store = await openStore(prefix);
  await store.appendEvidence([input(0, T0)]);
  await expect(store.appendEvidence([input(1, T0), input(2, Number.NaN)])).rejects.toThrow(TypeError);
  expect((await store.evidenceHead())?.seq).toBe(1);
  const [next] = await store.appendEvidence([input(3, T0)]);
  expect(next!.seq).toBe(2);
  expect(await verifyEvidence(store)).toMatchObject({ ok: true, records: 2 });
});

test('an index key overwritten with another type does not stop an append half way', async () => {
  const prefix = freshPrefix();
  const store = await openStore(prefix);
  await client.set(evidenceKey(prefix, 'ix', 'q', 'Q1'), 'not a sorted set');
  const stored = await store.appendEvidence([input(0, T0), input(1, T0), input(2, T0)]);
  expect(stored.map((r) => r.seq)).toEqual([1, 2, 3]);
  expect((await store.evidenceHead())?.seq).toBe(3);
  expect((await collect(store, { recipient: 'patient1@partner1.example' })).map((r) => r.seq)).toEqual([2]);
  // A look-up through the broken index reads the days instead.
  expect((await collect(store, { queueId: 'Q1' })).map((r) => r.seq)).toEqual([2]);
  expect((await collect(store, { queueId: 'Q1', domain: 'partner1.example' })).map((r) => r.seq)).toEqual([2]);
  expect(await verifyEvidence(store)).toMatchObject({ ok: true, records: 3 });
});

test('an append starts from the log as this process left it; a stale start is caught and read afresh', async () => {
  const prefix = freshPrefix();
  const clock = { at: T0 };
  const one = await openStore(prefix, { clock });
  const two = await openStore(prefix, { clock });
  // Writes on one's connection: one per command sent alone (the state read, the script call).
  const stream = (one as unknown as { core: { redis: { stream: { write: (...args: unknown[]) => boolean } } } }).core.redis.stream;
  const write = jest.spyOn(stream, 'write');
  const trips = async (store: RedisStore, n: number): Promise<number> => {
    write.mockClear();
    await store.appendEvidence([input(n, clock.at + n)]);
    return write.mock.calls.length;
  };
  const first = await trips(one, 0);
  const second = await trips(one, 1);
  await two.appendEvidence([input(2, clock.at + 2)]);
  // one's start is stale now: its script call is refused, it reads the log and appends after two's record.
  const afterOther = await trips(one, 3);
  // Having been wrong once, it reads first, finds the log as it left it and trusts its own state again.
  const untrusted = await trips(one, 4);
  const trustedAgain = await trips(one, 5);
  write.mockRestore();
  expect({ first, second, afterOther, untrusted, trustedAgain }).toEqual({ first: 2, second: 1, afterOther: 3, untrusted: 2, trustedAgain: 1 });
  expect(await verifyEvidence(two)).toMatchObject({ ok: true, records: 6 });
  expect((await collect(two, {})).map((r) => [r.seq, r.data.n])).toEqual([0, 1, 2, 3, 4, 5].map((n) => [n + 1, n]));
});

test('a resent script call whose first run was applied appends nothing twice', async () => {
  const prefix = freshPrefix();
  const store = await openStore(prefix);
  await store.appendEvidence([input(0, T0)]);
  // As when the connection drops after Redis ran the script and the client sends it again.
  const scripted = (store as unknown as { core: { redis: { sgEvidenceAppend: (...args: (string | number)[]) => Promise<number> } } }).core.redis;
  const original = scripted.sgEvidenceAppend.bind(scripted);
  const replies: number[] = [];
  scripted.sgEvidenceAppend = async (...args) => {
    replies.push(await original(...args));
    const again = await original(...args);
    replies.push(again);
    return again;
  };
  const stored = await store.appendEvidence([input(1, T0), input(2, T0)]);
  expect(replies).toEqual([1, 2]);
  expect(stored.map((r) => r.seq)).toEqual([2, 3]);
  expect(await verifyEvidence(store)).toMatchObject({ ok: true, records: 3 });
  expect((await collect(store, { recipient: 'patient1@partner1.example' })).map((r) => r.seq)).toEqual([2]);
});

test('two relay processes on one Redis append one chain with no gap and no fork', async () => {
  const prefix = freshPrefix();
  const script = path.join(__dirname, 'evidence-appender.ts');
  const run = (name: string) =>
    new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, ['--require', 'tsx/cjs', script, redis.url, prefix, name, '150'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new Error(`appender ${name} (pid ${child.pid}) exited with ${code}: ${stderr}`));
      });
    });
  await Promise.all([run('relay-a'), run('relay-b')]);
  const store = await openStore(prefix);
  expect(await verifyEvidence(store)).toMatchObject({ ok: true, records: 300 });
  const head = await store.evidenceHead();
  expect(head?.seq).toBe(300);
  expect(await collect(store, { domain: 'relay-a.test' })).toHaveLength(150);
  expect(await collect(store, { domain: 'relay-b.test' })).toHaveLength(150);
}, 90_000);

describe('tampering in Redis is named by verify at the right entry', () => {
  async function tampered(change: (prefix: string) => Promise<unknown>) {
    const prefix = freshPrefix();
    const clock = { at: T0 };
    const store = await openStore(prefix, { clock });
    await threeDays(store, clock);
    expect((await verifyEvidence(store)).ok).toBe(true);
    await change(prefix);
    return verifyEvidence(store);
  }

  test('an edited field (LSET)', async () => {
    const result = await tampered(async (prefix) => {
      const key = evidenceKey(prefix, 'day', '2026-11-03');
      const record = JSON.parse((await client.lindex(key, 1))!) as EvidenceRecord;
      await client.lset(key, 1, JSON.stringify({ ...record, recipient: 'someone@else.example' }));
    });
    expect(result.ok).toBe(false);
    expect(result.firstBroken).toMatchObject({ day: '2026-11-03', line: 2, seq: 6 });
    expect(result.firstBroken?.reason).toMatch(/changed after it was written/);
  });

  test('a removed record (LREM)', async () => {
    const result = await tampered(async (prefix) => {
      const key = evidenceKey(prefix, 'day', '2026-11-02');
      await client.lrem(key, 1, (await client.lindex(key, 2))!);
    });
    expect(result.firstBroken).toMatchObject({ day: '2026-11-02', line: 3, seq: 3 });
    expect(result.firstBroken?.reason).toMatch(/removed or moved/);
  });

  test('two records swapped', async () => {
    const result = await tampered(async (prefix) => {
      const key = evidenceKey(prefix, 'day', '2026-11-04');
      const [first, second] = await client.lrange(key, 0, 1);
      await client.multi().lset(key, 0, second!).lset(key, 1, first!).exec();
    });
    expect(result.firstBroken).toMatchObject({ day: '2026-11-04', line: 1, seq: 8 });
  });

  test('a removed anchor (HDEL)', async () => {
    const result = await tampered(async (prefix) => {
      await client.hdel(evidenceKey(prefix, 'anchors'), '2026-11-02');
    });
    expect(result.firstBroken).toMatchObject({ day: '2026-11-03', line: 0 });
    expect(result.firstBroken?.reason).toMatch(/does not link to the anchor before it/);
  });

  test('the newest anchor removed (HDEL): its day still must have one', async () => {
    const result = await tampered(async (prefix) => {
      await client.hdel(evidenceKey(prefix, 'anchors'), '2026-11-03');
    });
    expect(result.firstBroken).toMatchObject({ day: '2026-11-03', line: 0 });
  });

  test('a damaged anchor', async () => {
    const result = await tampered(async (prefix) => {
      await client.hset(evidenceKey(prefix, 'anchors'), '2026-11-02', '{"day": "2026-11-02", "lastSeq": 4');
    });
    expect(result.firstBroken).toMatchObject({ day: '2026-11-02', line: 0 });
  });

  test('the last record of the open day removed (RPOP)', async () => {
    const result = await tampered(async (prefix) => {
      await client.rpop(evidenceKey(prefix, 'day', '2026-11-04'));
    });
    expect(result.firstBroken).toMatchObject({ day: '2026-11-04', line: 2, seq: 9 });
  });
});

test('damaged entries never break a query: an element that is not JSON and members pointing nowhere are skipped', async () => {
  const prefix = freshPrefix();
  const clock = { at: T0 };
  const store = await openStore(prefix, { clock });
  const all = await threeDays(store, clock);
  const q1 = all.filter((r) => r.queueId === 'Q1').map((r) => r.seq);
  expect(q1.length).toBeGreaterThan(1);
  const victim = all.find((r) => r.seq === q1[0])!;
  const position = all.filter((r) => r.day === victim.day).findIndex((r) => r.seq === victim.seq);
  await client.lset(evidenceKey(prefix, 'day', victim.day), position, '{"seq": 1, truncated');
  await client.zadd(evidenceKey(prefix, 'ix', 'q', 'Q1'), T0, '2026-11-04:99', T0, '2025-01-01:0', T0, 'nonsense');
  expect((await collect(store, { queueId: 'Q1' })).map((r) => r.seq)).toEqual(q1.slice(1));
  expect((await collect(store, {})).map((r) => r.seq)).toEqual(all.map((r) => r.seq).filter((s) => s !== victim.seq));
  const verified = await verifyEvidence(store);
  expect(verified.firstBroken).toMatchObject({ day: victim.day, line: position + 1, seq: victim.seq });
});

test('prune removes whole sealed days before the cutoff with their index members, never the open day', async () => {
  const prefix = freshPrefix();
  const clock = { at: T0 };
  const store = await openStore(prefix, { clock });
  const all = await threeDays(store, clock);
  clock.at = T0 + 3 * DAY;
  await store.appendEvidence([input(9, clock.at)]);
  const indexKey = evidenceKey(prefix, 'ix', 'd', 'partner0.example');
  expect(await client.zrange(indexKey, '0', '-1')).toEqual(expect.arrayContaining(['2026-11-02:0', '2026-11-03:2']));

  const result = await store.pruneEvidence('2026-11-04');
  expect(result.days).toEqual(['2026-11-02', '2026-11-03']);
  expect(result.records).toBe(7);
  expect(result.base).toMatchObject({ prunedThrough: '2026-11-03', lastSeq: 7, lastHash: all[6]!.hash });
  expect(await store.evidenceBase()).toEqual(result.base);
  expect(await store.evidenceDays()).toEqual(['2026-11-04', '2026-11-05']);
  expect((await store.evidenceAnchors()).map((a) => a.day)).toEqual(['2026-11-04']);
  for (const member of await client.zrange(indexKey, '0', '-1')) expect(member.startsWith('2026-11-02') || member.startsWith('2026-11-03')).toBe(false);
  expect(await client.exists(evidenceKey(prefix, 'dayix', '2026-11-02'), evidenceKey(prefix, 'day', '2026-11-03'))).toBe(0);
  expect(await client.smembers(evidenceKey(prefix, 'pruning'))).toEqual([]);
  expect((await collect(store, { domain: 'partner0.example' })).map((r) => r.seq)).toEqual([10]);
  expect(await verifyEvidence(store)).toMatchObject({ ok: true, records: 3 });

  // The open day stays whatever the cutoff; the chain goes on from the base.
  const later = await store.pruneEvidence('2027-01-01');
  expect(later.days).toEqual(['2026-11-04']);
  expect(await store.evidenceDays()).toEqual(['2026-11-05']);
  const [next] = await store.appendEvidence([input(10, clock.at)]);
  expect(next!.seq).toBe(11);
  expect(await verifyEvidence(store)).toMatchObject({ ok: true, records: 2, openDay: '2026-11-05' });
});

ownServerTest(
  'a Redis restart between appends loses nothing acknowledged',
  async () => {
    const prefix = freshPrefix();
    const store = await openStore(prefix);
    const first = await store.appendEvidence(Array.from({ length: 50 }, (_, i) => input(i, Date.now())));
    await redis.kill9();
    await redis.resume();
    let second: EvidenceRecord[] | undefined;
    for (let attempt = 0; attempt < 50 && !second; attempt++) {
      try {
        second = await store.appendEvidence([input(99, Date.now())]);
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    expect(second?.[0]?.seq).toBe(51);
    expect(await verifyEvidence(store)).toMatchObject({ ok: true, records: 51 });
    expect((await collect(store, { queueId: first[10]!.queueId! })).length).toBeGreaterThan(0);
  },
  60_000,
);
