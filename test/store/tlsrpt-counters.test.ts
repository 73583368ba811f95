import { randomBytes } from 'node:crypto';
import { mkdtempSync, promises as fs, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../src/log/logger';
import { FileStore } from '../../src/store/file/file-store';
import { RedisStore } from '../../src/store/redis/redis-store';
import type { Store, TlsRptTally } from '../../src/store/types';
import { startRedis, type RedisHandle } from '../support/redis-server';

/** Two handles on one backend: two relays sharing a Redis, or the relay and the CLI on one spool. */
interface Backend {
  a: Store;
  b: Store;
  dispose(): Promise<void>;
}

const sorted = (tallies: TlsRptTally[]) => [...tallies].sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));

function countersContract(name: string, open: () => Promise<Backend>): void {
  describe(`TLS-RPT counters (${name})`, () => {
    let backend: Backend;
    beforeEach(async () => {
      backend = await open();
    });
    afterEach(async () => {
      await backend.dispose();
    });

    test('adds up successes and failures per (policy, detail), separately per domain and day', async () => {
      const { a } = backend;
      await a.tlsRptCount('2026-11-29', 'example.org', 'P1', null);
      await a.tlsRptCount('2026-11-29', 'example.org', 'P1', null);
      await a.tlsRptCount('2026-11-29', 'example.org', 'P1', 'D1');
      await a.tlsRptCount('2026-11-29', 'example.org', 'P2', 'D1', 3);
      await a.tlsRptCount('2026-11-29', 'other.test', 'P1', null);
      await a.tlsRptCount('2026-11-30', 'example.org', 'P1', null);
      expect(sorted(await a.tlsRptRead('example.org', '2026-11-29'))).toEqual(
        sorted([
          { policy: 'P1', detail: null, count: 2 },
          { policy: 'P1', detail: 'D1', count: 1 },
          { policy: 'P2', detail: 'D1', count: 3 },
        ]),
      );
      expect(await a.tlsRptDomains('2026-11-29')).toEqual(['example.org', 'other.test']);
      expect(await a.tlsRptDomains('2026-11-30')).toEqual(['example.org']);
      expect(await a.tlsRptDomains('2026-11-28')).toEqual([]);
      expect(await a.tlsRptRead('nobody.test', '2026-11-29')).toEqual([]);
    });

    test('keys with tabs, quotes and JSON survive unchanged', async () => {
      const policy = JSON.stringify(['sts', ['mode: enforce', 'mx: *.example.org'], ['a\tb']]);
      const detail = JSON.stringify(['validation-failure', '127.0.0.1', null, '"x"']);
      await backend.a.tlsRptCount('2026-11-29', 'example.org', policy, detail);
      expect(await backend.a.tlsRptRead('example.org', '2026-11-29')).toEqual([{ policy, detail, count: 1 }]);
    });

    test('two store instances count into the same counters', async () => {
      const { a, b } = backend;
      await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).tlsRptCount('2026-11-29', 'example.org', 'P', i % 3 ? null : 'F')));
      expect(sorted(await b.tlsRptRead('example.org', '2026-11-29'))).toEqual(
        sorted([
          { policy: 'P', detail: null, count: 13 },
          { policy: 'P', detail: 'F', count: 7 },
        ]),
      );
      expect(await a.tlsRptDomains('2026-11-29')).toEqual(['example.org']);
    });

    test('prune drops days before the given one and keeps the rest', async () => {
      const { a } = backend;
      for (const day of ['2026-11-01', '2026-11-14', '2026-11-15', '2026-11-29']) await a.tlsRptCount(day, 'example.org', 'P', null);
      expect(await a.tlsRptPrune('2026-11-15')).toBe(2);
      expect(await a.tlsRptDomains('2026-11-14')).toEqual([]);
      expect(await a.tlsRptRead('example.org', '2026-11-01')).toEqual([]);
      expect(await a.tlsRptRead('example.org', '2026-11-15')).toEqual([{ policy: 'P', detail: null, count: 1 }]);
      expect(await a.tlsRptPrune('2026-11-15')).toBe(0);
    });

    test('refuses a day that is not YYYY-MM-DD (no path or key tricks)', async () => {
      await expect(backend.a.tlsRptCount('../x', 'example.org', 'P', null)).rejects.toThrow(/YYYY-MM-DD/);
      await expect(backend.a.tlsRptDomains('2026-11-29:x')).rejects.toThrow(/YYYY-MM-DD/);
    });
  });
}

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

countersContract('file', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sg-tlsrpt-'));
  dirs.push(dir);
  const options = { path: dir, keepFinished: 86_400_000, logger: silentLogger() };
  const a = new FileStore(options);
  const b = new FileStore(options);
  await a.open();
  await b.open();
  return {
    a,
    b,
    async dispose() {
      await a.close();
      await b.close();
    },
  };
});

describe('file TLS-RPT counters on disk', () => {
  test('a line torn by a crash is skipped, the others still count', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sg-tlsrpt-'));
    dirs.push(dir);
    const store = new FileStore({ path: dir, keepFinished: 86_400_000, logger: silentLogger() });
    await store.open();
    await store.tlsRptCount('2026-11-29', 'example.org', 'P', null);
    await fs.appendFile(path.join(dir, 'tlsrpt', '2026-11-29.jsonl'), '{"d":"example.org","p":"P","f":nu');
    expect(await store.tlsRptRead('example.org', '2026-11-29')).toEqual([{ policy: 'P', detail: null, count: 1 }]);
    await store.close();
  });
});

let redis: RedisHandle;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

countersContract('redis', async () => {
  const prefix = `${redis.prefix}:${randomBytes(4).toString('hex')}`;
  const external = Boolean(process.env.SEALGATE_TEST_REDIS_URL);
  const make = () => new RedisStore({ url: redis.url, prefix, keepFinished: 86_400_000, onWeakDurability: external ? 'warn' : 'refuse', logger: silentLogger() });
  const a = make();
  const b = make();
  await a.open();
  await b.open();
  return {
    a,
    b,
    async dispose() {
      await a.close();
      await b.close();
    },
  };
});
