import { AuthThrottle, type AuthThrottleLimits } from '../../src/inbound/auth-throttle';

const LIMITS: AuthThrottleLimits = { maxFailures: 10, window: 15 * 60_000, penaltyTime: 15 * 60_000, baseDelay: 500, maxDelay: 8_000 };

function clocked(limits: Partial<AuthThrottleLimits> = {}) {
  let now = 1_000_000;
  const throttle = new AuthThrottle({ ...LIMITS, ...limits }, () => now);
  return { throttle, advance: (ms: number) => (now += ms) };
}

describe('AuthThrottle (failed AUTH per client address)', () => {
  test('the delay doubles from 0.5 s with each failure and stays at 8 s', () => {
    const { throttle } = clocked({ maxFailures: 100 });
    const delays = Array.from({ length: 8 }, () => throttle.failure('192.0.2.1').delay);
    expect(delays).toEqual([500, 1_000, 2_000, 4_000, 8_000, 8_000, 8_000, 8_000]);
  });

  test('addresses are counted apart', () => {
    const { throttle } = clocked();
    throttle.failure('192.0.2.1');
    throttle.failure('192.0.2.1');
    expect(throttle.failure('192.0.2.2')).toEqual({ delay: 500, penalized: false, failures: 1 });
  });

  test('the 10th failure in the window enters the penalty box for penaltyTime; the 9th does not', () => {
    const { throttle, advance } = clocked();
    for (let i = 1; i <= 9; i++) {
      expect(throttle.failure('192.0.2.1').penalized).toBe(false);
      advance(1_000);
    }
    expect(throttle.penaltyLeft('192.0.2.1')).toBe(0);
    expect(throttle.failure('192.0.2.1')).toMatchObject({ penalized: true, failures: 10 });
    expect(throttle.penaltyLeft('192.0.2.1')).toBe(15 * 60_000);
    advance(15 * 60_000 - 1);
    expect(throttle.penaltyLeft('192.0.2.1')).toBe(1);
    advance(1);
    expect(throttle.penaltyLeft('192.0.2.1')).toBe(0);
    expect(throttle.penaltyLeft('192.0.2.2')).toBe(0);
  });

  test('failures older than the window no longer count', () => {
    const { throttle, advance } = clocked({ window: 60_000 });
    for (let i = 0; i < 9; i++) throttle.failure('192.0.2.1');
    advance(60_000);
    expect(throttle.failure('192.0.2.1')).toEqual({ delay: 500, penalized: false, failures: 1 });
  });

  test('after the penalty, one more failure inside the window penalises again at once', () => {
    const { throttle, advance } = clocked({ window: 60 * 60_000, penaltyTime: 60_000 });
    for (let i = 0; i < 10; i++) throttle.failure('192.0.2.1');
    advance(60_000);
    expect(throttle.penaltyLeft('192.0.2.1')).toBe(0);
    expect(throttle.failure('192.0.2.1').penalized).toBe(true);
    expect(throttle.penaltyLeft('192.0.2.1')).toBe(60_000);
  });

  test('a zero base delay turns the tarpit off', () => {
    const { throttle } = clocked({ baseDelay: 0 });
    expect(throttle.failure('192.0.2.1').delay).toBe(0);
  });

  test('memory is bounded: the least recently failed address is forgotten first', () => {
    const { throttle } = clocked({ maxAddresses: 3, maxFailures: 2 });
    throttle.failure('192.0.2.1');
    throttle.failure('192.0.2.1');
    expect(throttle.penaltyLeft('192.0.2.1')).toBeGreaterThan(0);
    for (let i = 2; i <= 4; i++) throttle.failure(`192.0.2.${i}`);
    expect(throttle.size).toBe(3);
    expect(throttle.penaltyLeft('192.0.2.1')).toBe(0);
    for (let i = 0; i < 10_000; i++) throttle.failure('192.0.2.4');
    expect(throttle.size).toBe(3);
  });
});
