import { silentLogger } from '../../src/log/logger';
import { EnqueueAbortedError, InvalidStateError, LeaseLostError, NotFoundError, StoreError, StoreUnavailableError } from '../../src/store/types';
import { RedisCore } from '../../src/store/redis/core';
import { ScriptResult, scriptOutcome } from '../../src/store/redis/scripts';

/** The one mapping of Redis script replies to results and typed errors, and the connection-error guard (no sockets). */

function thrown(run: () => unknown): StoreError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(StoreError);
    return error as StoreError;
  }
  throw new Error('expected a StoreError');
}

describe('scriptOutcome', () => {
  test('done and changed are results, not errors', () => {
    expect(scriptOutcome(ScriptResult.done, { jobId: 'M/one.test' })).toBe('done');
    expect(scriptOutcome(ScriptResult.changed, { jobId: 'M/one.test' })).toBe('changed');
  });

  test('lease lost names the job lease, or the fallback claim when no job is involved', () => {
    const lease = thrown(() => scriptOutcome(ScriptResult.leaseLost, { jobId: 'M/one.test', owner: 'w1' }));
    expect(lease).toBeInstanceOf(LeaseLostError);
    expect(lease.code).toBe('lease-lost');
    expect(lease.message).toBe('lease on M/one.test is not held by w1');
    const claim = thrown(() => scriptOutcome(ScriptResult.leaseLost, { itemId: 'M.abc', owner: 'p1' }));
    expect(claim.code).toBe('lease-lost');
    expect(claim.message).toBe('fallback item M.abc is not claimed by p1');
  });

  test('a gone item is not-found, an acknowledged one handed-over', () => {
    const gone = thrown(() => scriptOutcome(ScriptResult.itemGone, { jobId: 'M/one.test', itemId: 'M.abc' }));
    expect(gone).toBeInstanceOf(NotFoundError);
    expect([gone.code, gone.message]).toEqual(['not-found', 'fallback item M.abc not found']);
    const acked = thrown(() => scriptOutcome(ScriptResult.handedOver, { jobId: 'M/one.test', itemId: 'M.abc' }));
    expect(acked).toBeInstanceOf(InvalidStateError);
    expect(acked.code).toBe('handed-over');
    expect(acked.message).toMatch(/M\.abc was already handed over/);
  });

  test('a reply no script gives is an internal error, never success', () => {
    for (const reply of [2, -4, 7]) expect(thrown(() => scriptOutcome(reply, { jobId: 'M/one.test' })).code).toBe('internal');
  });

  test('the enum values are the scripts’ replies', () => {
    expect(ScriptResult).toEqual({ done: 1, changed: 0, leaseLost: -1, itemGone: -2, handedOver: -3 });
  });
});

describe('RedisCore.guard', () => {
  // lazyConnect: the client never opens a socket in these tests.
  const core = new RedisCore({ url: 'redis://user:secret@127.0.0.1:1', prefix: 'sg:test', keepFinished: 0, onWeakDurability: 'warn', logger: silentLogger() });

  afterAll(() => core.redis.disconnect());

  test('a lost connection becomes StoreUnavailableError naming the address without credentials', async () => {
    const error = await core.guard(() => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:1'))).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as StoreError).code).toBe('unavailable');
    expect((error as Error).message).toBe('Redis queue at 127.0.0.1:1 is unreachable (connect ECONNREFUSED 127.0.0.1:1)');
    expect((error as Error).message).not.toContain('secret');
  });

  test('store errors and other failures pass through unchanged', async () => {
    const aborted = new EnqueueAbortedError('message body not stored: read ECONNRESET');
    await expect(core.guard(() => Promise.reject(aborted))).rejects.toBe(aborted);
    const other = new Error('WRONGTYPE Operation against a key holding the wrong kind of value');
    await expect(core.guard(() => Promise.reject(other))).rejects.toBe(other);
    await expect(core.guard(async () => 42)).resolves.toBe(42);
  });
});
