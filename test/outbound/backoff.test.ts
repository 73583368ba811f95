import { hasExpired, nextRetryAt } from '../../src/outbound/backoff';

describe('retry backoff', () => {
  const schedule = [60_000, 300_000, 900_000];

  test('follows the schedule by attempt number and repeats its last step', () => {
    const noJitter = () => 0;
    expect(nextRetryAt(1, schedule, 1_000, noJitter)).toBe(61_000);
    expect(nextRetryAt(2, schedule, 1_000, noJitter)).toBe(301_000);
    expect(nextRetryAt(3, schedule, 1_000, noJitter)).toBe(901_000);
    expect(nextRetryAt(9, schedule, 1_000, noJitter)).toBe(901_000);
  });

  test('adds at most 10% jitter', () => {
    expect(nextRetryAt(1, schedule, 0, () => 0.999)).toBe(Math.round(60_000 * 1.0999));
    expect(nextRetryAt(1, schedule, 0, () => 0.5)).toBe(63_000);
  });

  test('refuses an empty schedule', () => {
    expect(() => nextRetryAt(1, [], 0)).toThrow(/empty/);
  });

  test('a message expires once it has waited maxQueueTime', () => {
    expect(hasExpired(0, 1_000, 999)).toBe(false);
    expect(hasExpired(0, 1_000, 1_000)).toBe(true);
  });
});
