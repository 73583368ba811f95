import { silentLogger, type Logger } from '../../src/log/logger';
import { retryWhileUnavailable } from '../../src/outbound/store-retry';
import { NotFoundError, StoreUnavailableError } from '../../src/store/types';

/** Holding a store write through an outage: retried while the store is unavailable, anything else thrown at once. */

function recordingLogger(lines: Array<Record<string, unknown>>): Logger {
  return { ...silentLogger(), warn: (fields: Record<string, unknown>) => lines.push(fields) };
}

describe('retryWhileUnavailable', () => {
  test('retries while the store is unavailable and returns what the write returns once it answers', async () => {
    const lines: Array<Record<string, unknown>> = [];
    let calls = 0;
    const value = await retryWhileUnavailable(
      async () => {
        if (++calls <= 2) throw new StoreUnavailableError('connection lost');
        return 'written';
      },
      { event: 'dsn-retry', logger: recordingLogger(lines), fields: { queueId: 'q1' } },
    );
    expect(value).toBe('written');
    expect(calls).toBe(3);
    expect(lines).toEqual([expect.objectContaining({ event: 'dsn-retry', queueId: 'q1', retryInMs: 500 }), expect.objectContaining({ event: 'dsn-retry', queueId: 'q1', retryInMs: 1000 })]);
  });

  test('any other error is thrown at once, without a retry', async () => {
    let calls = 0;
    const write = async (): Promise<void> => {
      calls++;
      throw new NotFoundError('gone');
    };
    await expect(retryWhileUnavailable(write, { event: 'complete-retry', logger: silentLogger() })).rejects.toBeInstanceOf(NotFoundError);
    expect(calls).toBe(1);
  });

  test('gives up with the store error once aborted or past its bound', async () => {
    const aborted = new AbortController();
    aborted.abort();
    let calls = 0;
    const down = async (): Promise<void> => {
      calls++;
      throw new StoreUnavailableError('connection lost');
    };
    await expect(retryWhileUnavailable(down, { event: 'complete-retry', logger: silentLogger(), signal: aborted.signal })).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(calls).toBe(1);
    calls = 0;
    await expect(retryWhileUnavailable(down, { event: 'complete-retry', logger: silentLogger(), maxMs: 1_000 })).rejects.toBeInstanceOf(StoreUnavailableError);
    // A retry after 0.5 s; the next delay (1 s) would pass the 1 s bound.
    expect(calls).toBe(2);
  });
});
