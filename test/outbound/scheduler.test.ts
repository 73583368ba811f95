import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { silentLogger } from '../../src/log/logger';
import { Scheduler, type SchedulerOptions } from '../../src/outbound/scheduler';
import { FileStore } from '../../src/store/file/file-store';
import type { Logger } from '../../src/log/logger';
import { DamagedEntryError, StoreUnavailableError, type ClaimedJob, type JobResult, type Store } from '../../src/store/types';

/** The scheduler against a real file store: limits, settling, crash handling, shutdown hand-back. */

function deferredOrDelivered(claimed: ClaimedJob, outcome: 'delivered' | 'deferred'): JobResult {
  const now = Date.now();
  return {
    recipients: claimed.job.recipients.map((r) => ({ address: r.address, outcome, evidence: { at: now, outcome, reason: outcome } })),
    ...(outcome === 'deferred' ? { retryAt: now + 3_600_000 } : {}),
  };
}

async function waitUntil(check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('Scheduler', () => {
  let dir: string;
  let store: Store;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-scheduler-'));
    store = new FileStore({ path: dir, keepFinished: 60_000, logger: silentLogger() });
    await store.open();
  });

  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function enqueue(domains: string[]): Promise<string> {
    const record = await store.enqueue(
      { from: 'a@sender.test', recipients: domains.map((d) => ({ address: `x@${d}` })), params: {}, client: { ip: '127.0.0.1', listener: 'test' }, receivedAt: Date.now() },
      Readable.from([Buffer.from('Subject: t\r\n\r\nbody\r\n')]),
    );
    return record.id;
  }

  /** A scheduler on the test store with the usual test settings; each test states only what it is about. */
  function schedulerWith(options: Partial<SchedulerOptions> & Pick<SchedulerOptions, 'deliver'>): Scheduler {
    return new Scheduler({
      store,
      logger: silentLogger(),
      owner: 'w1',
      concurrency: 1,
      perDestination: 1,
      leaseMs: 60_000,
      idlePollMs: 20,
      onCrash: (claimed) => deferredOrDelivered(claimed, 'deferred'),
      ...options,
    });
  }

  test('keeps within the global and per-destination limits and settles every job', async () => {
    for (let i = 0; i < 6; i++) await enqueue(['one.test', 'two.test']);
    let running = 0;
    let maxRunning = 0;
    const perDomain = new Map<string, number>();
    let maxPerDomain = 0;
    const settled: string[] = [];
    const scheduler = schedulerWith({
      concurrency: 3,
      perDestination: 2,
      deliver: async (claimed) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        const d = (perDomain.get(claimed.job.domain) ?? 0) + 1;
        perDomain.set(claimed.job.domain, d);
        maxPerDomain = Math.max(maxPerDomain, d);
        await new Promise((r) => setTimeout(r, 30));
        perDomain.set(claimed.job.domain, perDomain.get(claimed.job.domain)! - 1);
        running--;
        return deferredOrDelivered(claimed, 'delivered');
      },
      onSettled: (claimed) => settled.push(claimed.job.id),
    });
    scheduler.start();
    await waitUntil(() => settled.length === 12);
    await scheduler.stop(1_000);
    expect(maxRunning).toBeLessThanOrEqual(3);
    expect(maxPerDomain).toBeLessThanOrEqual(2);
    expect(new Set(settled).size).toBe(12);
    expect((await store.counts()).jobs.delivered).toBe(12);
  });

  test('a delivery that throws is settled with the crash result, not lost', async () => {
    const id = await enqueue(['one.test']);
    const scheduler = schedulerWith({
      concurrency: 1,
      perDestination: 1,
      deliver: async () => {
        throw new Error('boom');
      },
    });
    scheduler.start();
    await waitUntil(async () => (await store.getMessage(id))!.jobs[0]!.state === 'deferred');
    await scheduler.stop(1_000);
    expect((await store.getMessage(id))!.jobs[0]!.recipients[0]!.history[0]!.reason).toBe('deferred');
  });

  test('tells the notice observer each final notice outcome once it is recorded, and nothing for other messages', async () => {
    const notice = await store.enqueue(
      {
        from: 'portal@relay.test',
        recipients: [{ address: 'p@one.test' }, { address: 'q@one.test' }, { address: 'r@one.test' }],
        params: { notice: { itemId: 'item-1', kind: 'portal-link' } },
        client: { ip: '127.0.0.1', listener: 'portal' },
        receivedAt: Date.now(),
      },
      Readable.from([Buffer.from('Subject: t\r\n\r\nbody\r\n')]),
    );
    const plain = await enqueue(['two.test']);
    const events: unknown[] = [];
    const recordedFirst: boolean[] = [];
    const scheduler = schedulerWith({
      concurrency: 2,
      perDestination: 1,
      deliver: async (claimed) => {
        const at = Date.now();
        const tls = { protocol: 'plaintext', cipher: null, group: null };
        return {
          recipients: claimed.job.recipients.map((r) =>
            r.address === 'p@one.test'
              ? { address: r.address, outcome: 'delivered' as const, evidence: { at, outcome: 'delivered' as const, reason: 'notice-delivered', tls } }
              : r.address === 'q@one.test'
                ? { address: r.address, outcome: 'bounced' as const, evidence: { at, outcome: 'bounced' as const, reason: 'rcpt-550', tls: null } }
                : { address: r.address, outcome: 'deferred' as const, evidence: { at, outcome: 'deferred' as const, reason: 'connect-failed' } },
          ),
          retryAt: at + 3_600_000,
        };
      },
      noticeObserver: {
        noticeFinished: (e) => {
          events.push(e);
          void store.getMessage(notice.id).then((m) => recordedFirst.push(m!.jobs[0]!.recipients.some((r) => r.state === 'delivered')));
        },
      },
    });
    scheduler.start();
    await waitUntil(async () => (await store.getMessage(plain))!.jobs[0]!.state === 'deferred' && events.length >= 2);
    await scheduler.stop(1_000);
    expect(events).toEqual([
      { queueId: notice.id, itemId: 'item-1', kind: 'portal-link', recipient: 'p@one.test', outcome: 'delivered', reason: 'notice-delivered', tls: 'plaintext' },
      { queueId: notice.id, itemId: 'item-1', kind: 'portal-link', recipient: 'q@one.test', outcome: 'bounced', reason: 'rcpt-550', tls: null },
    ]);
    await waitUntil(() => recordedFirst.length === 2);
    expect(recordedFirst).toEqual([true, true]);
  });

  test('stop() aborts deliveries that outlast the grace time and their jobs become due again', async () => {
    const id = await enqueue(['slow.test']);
    let started = false;
    const scheduler = schedulerWith({
      concurrency: 1,
      perDestination: 1,
      deliver: (claimed, signal) =>
        new Promise((resolve) => {
          started = true;
          signal.addEventListener('abort', () => {
            const now = Date.now();
            resolve({ recipients: claimed.job.recipients.map((r) => ({ address: r.address, outcome: 'deferred', evidence: { at: now, outcome: 'deferred', reason: 'shutdown' } })), retryAt: now });
          });
        }),
    });
    scheduler.start();
    await waitUntil(() => started);
    await scheduler.stop(100);
    const job = (await store.getMessage(id))!.jobs[0]!;
    expect(job.state).toBe('deferred');
    expect(job.dueAt).toBeLessThanOrEqual(Date.now());
    expect((await store.claimDue('w2', 1, 60_000)).map((c) => c.job.id)).toEqual([job.id]);
  });

  test('stop() hands back the lease of a delivery that ignores the abort', async () => {
    const id = await enqueue(['stuck.test']);
    let started = false;
    let release: (() => void) | undefined;
    const scheduler = schedulerWith({
      concurrency: 1,
      perDestination: 1,
      // Stands for a delivery stuck in a DNS lookup or connect that does not watch the signal.
      deliver: (claimed) =>
        new Promise((resolve) => {
          started = true;
          release = () => resolve(deferredOrDelivered(claimed, 'deferred'));
        }),
    });
    scheduler.start();
    await waitUntil(() => started);
    await scheduler.stop(50);
    const jobId = (await store.getMessage(id))!.jobs[0]!.id;
    expect((await store.claimDue('w2', 1, 60_000)).map((c) => c.job.id)).toEqual([jobId]);
    release?.();
  });

  test('a job whose lease expires while this process still delivers it is not started a second time', async () => {
    const id = await enqueue(['slow.test']);
    let attempts = 0;
    const scheduler = schedulerWith({
      concurrency: 4,
      perDestination: 4,
      // Renewals come every second at the earliest: this lease runs out while the delivery is still going.
      leaseMs: 50,
      idlePollMs: 10,
      deliver: async (claimed) => {
        attempts++;
        await new Promise((r) => setTimeout(r, 400));
        return deferredOrDelivered(claimed, 'delivered');
      },
    });
    scheduler.start();
    await waitUntil(async () => (await store.getMessage(id))!.jobs[0]!.state === 'delivered');
    await scheduler.stop(1_000);
    expect(attempts).toBe(1);
  });

  test('jobs waiting behind the per-destination limit keep their leases: a second worker never takes and delivers them', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await enqueue(['slow.test']));
    const deliveries: string[] = [];
    const worker = (owner: string): Scheduler =>
      schedulerWith({
        owner,
        concurrency: 5,
        perDestination: 1,
        // Each delivery takes 1 s, one at a time: the last job waits 4 s, longer than its lease.
        leaseMs: 3_000,
        deliver: async (claimed) => {
          deliveries.push(claimed.job.id);
          await new Promise((r) => setTimeout(r, 1_000));
          return deferredOrDelivered(claimed, 'delivered');
        },
      });
    const first = worker('w1');
    first.start();
    await waitUntil(() => deliveries.length === 1);
    const second = worker('w2');
    second.start();
    await waitUntil(async () => (await Promise.all(ids.map((id) => store.getMessage(id)))).every((m) => m!.jobs[0]!.state === 'delivered'), 15_000);
    await Promise.all([first.stop(1_000), second.stop(1_000)]);
    expect(deliveries.sort()).toEqual(ids.map((id) => `${id}/slow.test`).sort());
  });

  test('a result the store cannot take while it is unavailable is held and recorded once it answers, not delivered again', async () => {
    const id = await enqueue(['one.test']);
    let refusals = 0;
    let deliveries = 0;
    const completeJob = store.completeJob.bind(store);
    const flaky: Store = Object.assign(Object.create(store) as Store, {
      completeJob: (jobId: string, owner: string, result: JobResult) => (refusals++ < 3 ? Promise.reject(new StoreUnavailableError('connection lost')) : completeJob(jobId, owner, result)),
    });
    const scheduler = schedulerWith({
      store: flaky,
      concurrency: 2,
      perDestination: 2,
      // The outage (0.5 + 1 + 2 s of retries) outlasts the lease: the result must still be the one recorded.
      leaseMs: 1_000,
      deliver: async (claimed) => {
        deliveries++;
        return deferredOrDelivered(claimed, 'delivered');
      },
    });
    scheduler.start();
    await waitUntil(async () => (await store.getMessage(id))!.jobs[0]!.state === 'delivered', 15_000);
    await scheduler.stop(1_000);
    expect(refusals).toBe(4);
    expect(deliveries).toBe(1);
  });

  test('beforeRecord runs before the store records the result, onSettled after', async () => {
    const id = await enqueue(['one.test']);
    const seen: Array<[string, string]> = [];
    const scheduler = schedulerWith({
      concurrency: 1,
      perDestination: 1,
      deliver: async (claimed) => deferredOrDelivered(claimed, 'delivered'),
      beforeRecord: () => void store.getMessage(id).then((m) => seen.push(['before', m!.jobs[0]!.recipients[0]!.state])),
      onSettled: () => void store.getMessage(id).then((m) => seen.push(['settled', m!.jobs[0]!.recipients[0]!.state])),
    });
    scheduler.start();
    await waitUntil(() => seen.length === 2);
    await scheduler.stop(1_000);
    expect(seen).toEqual([
      ['before', 'pending'],
      ['settled', 'delivered'],
    ]);
  });

  test('a result whose evidence cannot be written is held, the write retried, and recorded once it is written', async () => {
    const id = await enqueue(['one.test']);
    const lines: Array<Record<string, unknown>> = [];
    const logger = { ...silentLogger(), error: (fields: Record<string, unknown>) => lines.push(fields), warn: (fields: Record<string, unknown>) => lines.push(fields) } as unknown as Logger;
    let writes = 0;
    let deliveries = 0;
    const scheduler = schedulerWith({
      logger,
      deliver: async (claimed) => {
        deliveries++;
        return deferredOrDelivered(claimed, 'delivered');
      },
      beforeRecord: async () => {
        // Not recorded while its evidence is not written.
        expect((await store.getMessage(id))!.jobs[0]!.recipients[0]!.state).toBe('pending');
        if (++writes < 3) throw new Error('ENOSPC: no space left on device');
      },
    });
    scheduler.start();
    await waitUntil(async () => (await store.getMessage(id))!.jobs[0]!.state === 'delivered', 15_000);
    await scheduler.stop(1_000);
    expect(writes).toBe(3);
    expect(deliveries).toBe(1);
    expect(lines.filter((l) => l.event === 'evidence-write-retry')).toHaveLength(2);
    expect(lines.filter((l) => l.event === 'evidence-write-failed')).toEqual([]);
  });

  test('a result whose evidence cannot be written at all is never recorded: the lease runs out and the job is retried', async () => {
    const id = await enqueue(['one.test']);
    const lines: Array<Record<string, unknown>> = [];
    const logger = { ...silentLogger(), error: (fields: Record<string, unknown>) => lines.push(fields), warn: (fields: Record<string, unknown>) => lines.push(fields) } as unknown as Logger;
    let deliveries = 0;
    let evidenceDown = true;
    const scheduler = schedulerWith({
      logger,
      leaseMs: 1_000,
      evidenceHoldMs: 0,
      deliver: async (claimed) => {
        deliveries++;
        return deferredOrDelivered(claimed, 'delivered');
      },
      beforeRecord: () => {
        if (evidenceDown) throw new Error('the evidence log is unavailable');
      },
    });
    scheduler.start();
    await waitUntil(() => lines.some((l) => l.event === 'evidence-write-failed'));
    expect((await store.getMessage(id))!.jobs[0]!.recipients[0]!.state).toBe('pending');
    evidenceDown = false;
    // Taken again once the lease expired, delivered again (a possible duplicate, logged), recorded this time.
    await waitUntil(async () => (await store.getMessage(id))!.jobs[0]!.state === 'delivered', 15_000);
    await scheduler.stop(1_000);
    expect(deliveries).toBe(2);
    expect(lines.find((l) => l.event === 'evidence-write-failed')).toMatchObject({ jobId: `${id}/one.test`, err: 'the evidence log is unavailable' });
  });

  test('a result that cannot be recorded is not delivered again: the message is quarantined once, with possible-duplicate evidence', async () => {
    const id = await enqueue(['one.test']);
    const other = await enqueue(['two.test']);
    const lines: Array<Record<string, unknown>> = [];
    const logger = { ...silentLogger(), error: (fields: Record<string, unknown>) => lines.push(fields), warn: (fields: Record<string, unknown>) => lines.push(fields) } as unknown as Logger;
    const deliveries: string[] = [];
    // What a damaged stored job did to the Redis store: the result is refused with a TypeError, every time.
    const completeJob = store.completeJob.bind(store);
    const broken: Store = Object.assign(Object.create(store) as Store, {
      completeJob: (jobId: string, owner: string, result: JobResult) =>
        jobId.startsWith(id) ? Promise.reject(new TypeError("Cannot read properties of undefined (reading 'join')")) : completeJob(jobId, owner, result),
    });
    const scheduler = schedulerWith({
      store: broken,
      logger,
      concurrency: 2,
      perDestination: 2,
      leaseMs: 300,
      deliver: async (claimed) => {
        deliveries.push(claimed.message.id);
        return deferredOrDelivered(claimed, 'delivered');
      },
    });
    scheduler.start();
    await waitUntil(async () => (await store.listQuarantined()).length === 1 && (await store.getMessage(other))?.jobs[0]?.state === 'delivered');
    // Several lease periods later it has still been delivered once.
    await new Promise((r) => setTimeout(r, 1_000));
    await scheduler.stop(1_000);
    expect(deliveries.filter((d) => d === id)).toHaveLength(1);
    expect(await store.listQuarantined()).toEqual([expect.objectContaining({ id, kind: 'result', code: 'result-unrecorded', jobId: `${id}/one.test` })]);
    const evidence = lines.filter((l) => l.event === 'possible-duplicate');
    expect(evidence).toEqual([expect.objectContaining({ cause: 'result-unrecorded', jobId: `${id}/one.test`, queueId: id, outcomes: { delivered: 1 } })]);
    expect(lines.filter((l) => l.event === 'complete-failed')).toEqual([]);
  });

  test('a message the store finds damaged while delivering is neither settled nor retried', async () => {
    const id = await enqueue(['one.test']);
    let deliveries = 0;
    let crashes = 0;
    const scheduler = schedulerWith({
      concurrency: 1,
      perDestination: 1,
      leaseMs: 300,
      deliver: async (claimed) => {
        deliveries++;
        await store.quarantineMessage(claimed.message.id, 'body', 'body has 3 of the 20 bytes stored at enqueue');
        throw new DamagedEntryError('message damaged; quarantined');
      },
      onCrash: (claimed) => {
        crashes++;
        return deferredOrDelivered(claimed, 'deferred');
      },
    });
    scheduler.start();
    await waitUntil(() => deliveries === 1);
    await new Promise((r) => setTimeout(r, 1_000));
    await scheduler.stop(1_000);
    expect(deliveries).toBe(1);
    expect(crashes).toBe(0);
    expect((await store.listQuarantined()).map((e) => e.id)).toEqual([id]);
  });
});
