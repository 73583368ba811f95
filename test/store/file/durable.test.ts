import { mkdtempSync, promises as fs, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DirSync, fsyncDir, unlinkIfPresent } from '../../../src/store/file/durable';

/** A fake fsync the test finishes by hand, and round starts the test triggers by hand (the end of a loop turn). */
function manual() {
  const started: Array<{ dir: string; finish(error?: Error): void }> = [];
  const scheduled: Array<() => void> = [];
  const sync = new DirSync(
    (dir) =>
      new Promise<void>((resolve, reject) => {
        started.push({ dir, finish: (error) => (error ? reject(error) : resolve()) });
      }),
    (start) => scheduled.push(start),
  );
  /** Ends the current turn: every round scheduled so far starts. */
  const endTurn = () => {
    for (const start of scheduled.splice(0)) start();
  };
  return { sync, started, endTurn };
}

/** Lets every queued promise callback run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

function track(promise: Promise<void>): { done: boolean; error?: unknown } {
  const state: { done: boolean; error?: unknown } = { done: false };
  promise.then(
    () => (state.done = true),
    (error: unknown) => {
      state.done = true;
      state.error = error;
    },
  );
  return state;
}

describe('DirSync (shared directory fsyncs)', () => {
  test('callers in one turn share one fsync, started after all of them asked and answered only when it ends', async () => {
    const { sync, started, endTurn } = manual();
    const callers = Array.from({ length: 5 }, () => track(sync.sync('/spool/meta')));
    // Nothing starts while callers may still be asking.
    expect(started).toHaveLength(0);
    endTurn();
    expect(started.map((s) => s.dir)).toEqual(['/spool/meta']);
    await settle();
    expect(callers.every((c) => !c.done)).toBe(true);
    started[0]!.finish();
    await settle();
    expect(callers.every((c) => c.done && c.error === undefined)).toBe(true);
  });

  test('a caller arriving once an fsync has started is answered only by one that started after its call', async () => {
    const { sync, started, endTurn } = manual();
    const early = track(sync.sync('/spool/meta'));
    endTurn();
    // Renamed after the running fsync began: that fsync may not cover it.
    const late = track(sync.sync('/spool/meta'));
    started[0]!.finish();
    await settle();
    expect(early.done).toBe(true);
    expect(late.done).toBe(false);
    expect(started).toHaveLength(1);
    endTurn();
    // The late caller's own round does not wait for a running fsync either.
    expect(started).toHaveLength(2);
    started[1]!.finish();
    await settle();
    expect(late).toEqual({ done: true });
  });

  test('a running fsync does not hold back the next round (both run at once; each answers only its own callers)', async () => {
    const { sync, started, endTurn } = manual();
    const first = track(sync.sync('/spool/meta'));
    endTurn();
    const second = track(sync.sync('/spool/meta'));
    endTurn();
    expect(started).toHaveLength(2);
    started[1]!.finish();
    await settle();
    expect(second.done).toBe(true);
    expect(first.done).toBe(false);
    started[0]!.finish();
    await settle();
    expect(first.done).toBe(true);
  });

  test('a failed fsync reaches every caller of its round, and only them', async () => {
    const { sync, started, endTurn } = manual();
    const a = track(sync.sync('/spool/meta'));
    const b = track(sync.sync('/spool/meta'));
    endTurn();
    const late = track(sync.sync('/spool/meta'));
    endTurn();
    const failure = new Error('EIO');
    started[0]!.finish(failure);
    started[1]!.finish();
    await settle();
    expect(a).toEqual({ done: true, error: failure });
    expect(b).toEqual({ done: true, error: failure });
    expect(late).toEqual({ done: true });
  });

  test('a synchronous throw from the fsync reaches its callers and does not wedge the folder', async () => {
    let calls = 0;
    const sync = new DirSync(() => {
      calls++;
      if (calls === 1) throw new Error('boom');
      return Promise.resolve();
    });
    await expect(Promise.all([sync.sync('/spool/meta'), sync.sync('/spool/meta')])).rejects.toThrow('boom');
    await expect(sync.sync('/spool/meta')).resolves.toBeUndefined();
    expect(calls).toBe(2);
  });

  test('folders are synced independently', async () => {
    const { sync, started, endTurn } = manual();
    const meta = track(sync.sync('/spool/meta'));
    const bodies = track(sync.sync('/spool/bodies'));
    endTurn();
    expect(started.map((s) => s.dir)).toEqual(['/spool/meta', '/spool/bodies']);
    started[1]!.finish();
    await settle();
    expect(bodies.done).toBe(true);
    expect(meta.done).toBe(false);
    started[0]!.finish();
    await settle();
    expect(meta.done).toBe(true);
  });
});

describe('fsyncDir and unlinkIfPresent on disk', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-durable-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('concurrent fsyncs of one real folder all resolve; a missing folder rejects every caller', async () => {
    await expect(Promise.all(Array.from({ length: 10 }, () => fsyncDir(dir)))).resolves.toHaveLength(10);
    const missing = path.join(dir, 'gone');
    const results = await Promise.allSettled(Array.from({ length: 3 }, () => fsyncDir(missing)));
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(results.map((r) => (r as PromiseRejectedResult).reason.code)).toEqual(['ENOENT', 'ENOENT', 'ENOENT']);
  });

  test('unlinkIfPresent removes a file, accepts a missing one and still reports other failures', async () => {
    const file = path.join(dir, 'lock');
    writeFileSync(file, '1');
    await unlinkIfPresent(file);
    await expect(fs.access(file)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(unlinkIfPresent(file)).resolves.toBeUndefined();
    await fs.mkdir(path.join(dir, 'sub'));
    await expect(unlinkIfPresent(path.join(dir, 'sub'))).rejects.toMatchObject({ code: expect.stringMatching(/EISDIR|EPERM/) });
  });
});
