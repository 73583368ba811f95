import { silentLogger } from '../../src/log/logger';
import { claimReport, TlsRptScheduler, utcDay } from '../../src/tlsrpt/schedule';
import type { SendResult } from '../../src/tlsrpt/send';

/** The daily run, with a test clock: when it sends, one instance per (domain, day), bounded retries. */

const HOUR = 3_600_000;
const NOV30 = Date.UTC(2026, 10, 30);

/** One shared "store": cacheIncrement as both backends do it (atomic count per key). */
function sharedClaims() {
  const counts = new Map<string, number>();
  return {
    async cacheIncrement(namespace: string, key: string): Promise<number> {
      const next = (counts.get(`${namespace}|${key}`) ?? 0) + 1;
      counts.set(`${namespace}|${key}`, next);
      return next;
    },
  };
}

function scheduler(options: {
  clock: { now: number };
  claims?: ReturnType<typeof sharedClaims>;
  domains?: string[];
  results?: SendResult[];
  random?: number;
  maxDelay?: number;
  retrySchedule?: number[];
}) {
  const sent: Array<{ domain: string; day: string; at: number }> = [];
  const results = [...(options.results ?? [])];
  const instance = new TlsRptScheduler({
    source: { domains: async (day) => (day === '2026-11-29' ? (options.domains ?? ['a.example', 'b.example']) : []) },
    claims: options.claims ?? sharedClaims(),
    send: async (domain, day) => {
      sent.push({ domain, day, at: options.clock.now });
      return results.shift() ?? { status: 'sent', reportId: 'r', results: [] };
    },
    logger: silentLogger(),
    maxDelay: options.maxDelay ?? 4 * HOUR,
    retrySchedule: options.retrySchedule ?? [5 * 60_000, 30 * 60_000],
    now: () => options.clock.now,
    random: () => options.random ?? 0.5,
  });
  return { instance, sent };
}

test('utcDay', () => {
  expect(utcDay(NOV30 - 1)).toBe('2026-11-29');
  expect(utcDay(NOV30)).toBe('2026-11-30');
});

test('sends the finished day after 00:00 UTC plus the random delay, once', async () => {
  const clock = { now: NOV30 + 10 * 60_000 };
  const { instance, sent } = scheduler({ clock, random: 0.5 }); // delay 2 h of 4 h
  await instance.runOnce();
  expect(sent).toEqual([]);
  expect(instance.nextRun).toEqual({ day: '2026-11-29', dueAt: NOV30 + 2 * HOUR });
  clock.now = NOV30 + 2 * HOUR - 1;
  await instance.runOnce();
  expect(sent).toEqual([]);
  clock.now = NOV30 + 2 * HOUR;
  await instance.runOnce();
  expect(sent.map((s) => `${s.domain} ${s.day}`)).toEqual(['a.example 2026-11-29', 'b.example 2026-11-29']);
  clock.now += HOUR;
  await instance.runOnce();
  expect(sent).toHaveLength(2);
  expect(instance.nextRun).toBeUndefined();
});

test('maxDelay 0: due at 00:00 UTC; a relay started later in the day sends at its first pass', async () => {
  const clock = { now: NOV30 + 9 * HOUR };
  const { instance, sent } = scheduler({ clock, maxDelay: 0 });
  await instance.runOnce();
  expect(sent).toHaveLength(2);
});

test('instances sharing a store: each (domain, day) is sent by exactly one', async () => {
  const clock = { now: NOV30 + 5 * HOUR };
  const claims = sharedClaims();
  const one = scheduler({ clock, claims, domains: ['a.example', 'b.example', 'c.example'] });
  const two = scheduler({ clock, claims, domains: ['a.example', 'b.example', 'c.example'] });
  await Promise.all([one.instance.runOnce(), two.instance.runOnce()]);
  const all = [...one.sent, ...two.sent].map((s) => s.domain).sort();
  expect(all).toEqual(['a.example', 'b.example', 'c.example']);
  // A restarted instance (fresh state) does not send the day again either.
  const three = scheduler({ clock, claims, domains: ['a.example', 'b.example', 'c.example'] });
  await three.instance.runOnce();
  expect(three.sent).toEqual([]);
  expect(await claimReport(claims, 'A.example', '2026-11-29')).toBe(false);
  expect(await claimReport(claims, 'a.example', '2026-11-30')).toBe(true);
});

test('a failed send is retried per the schedule, then given up; a success stops the retries', async () => {
  const clock = { now: NOV30 + 5 * HOUR };
  const failed: SendResult = { status: 'failed', retryable: true, reason: 'https://r.example/: HTTP 503', results: [] };
  const { instance, sent } = scheduler({ clock, domains: ['a.example', 'b.example'], results: [failed, { status: 'sent', reportId: 'r', results: [] }, failed, failed] });
  await instance.runOnce(); // a fails, b sent
  expect(sent.map((s) => s.domain)).toEqual(['a.example', 'b.example']);
  clock.now += 5 * 60_000 - 1;
  await instance.runOnce();
  expect(sent).toHaveLength(2);
  clock.now += 1;
  await instance.runOnce(); // first retry of a: fails again
  expect(sent.map((s) => s.domain)).toEqual(['a.example', 'b.example', 'a.example']);
  clock.now += 30 * 60_000;
  await instance.runOnce(); // second and last retry: fails, given up
  expect(sent).toHaveLength(4);
  clock.now += 24 * HOUR - 1;
  await instance.runOnce();
  expect(sent).toHaveLength(4);
});

test('a failure that cannot pass later (no DKIM key for a mailto rua) is not retried', async () => {
  const clock = { now: NOV30 + 5 * HOUR };
  const { instance, sent } = scheduler({ clock, domains: ['a.example'], results: [{ status: 'failed', retryable: false, reason: 'no DKIM key', results: [] }] });
  await instance.runOnce();
  clock.now += 2 * HOUR;
  await instance.runOnce();
  expect(sent).toHaveLength(1);
});

test('a send that throws counts as a failure to retry, and the run goes on to the next domain', async () => {
  const clock = { now: NOV30 + 5 * HOUR };
  let calls = 0;
  const instance = new TlsRptScheduler({
    source: { domains: async () => ['a.example', 'b.example'] },
    claims: sharedClaims(),
    send: async (domain) => {
      calls++;
      if (domain === 'a.example' && calls === 1) throw new Error('boom');
      return { status: 'sent', reportId: 'r', results: [] };
    },
    logger: silentLogger(),
    maxDelay: 0,
    retrySchedule: [60_000],
    now: () => clock.now,
  });
  await instance.runOnce();
  expect(calls).toBe(2);
  clock.now += 60_000;
  await instance.runOnce();
  expect(calls).toBe(3);
});

test('start and stop: the first pass runs at once; stop waits and nothing runs after', async () => {
  const clock = { now: NOV30 + 5 * HOUR };
  const { instance, sent } = scheduler({ clock, maxDelay: 0 });
  instance.start();
  const deadline = Date.now() + 5_000;
  while (sent.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  await instance.stop();
  expect(sent).toHaveLength(2);
});
