import { ConnectionTracker } from '../../src/inbound/connection-tracker';

describe('ConnectionTracker', () => {
  test('caps sessions per IP and in total, and frees slots on release', () => {
    const tracker = new ConnectionTracker(3, 2);
    expect(tracker.admit('s1', '192.0.2.1')).toBe('ok');
    expect(tracker.admit('s2', '192.0.2.1')).toBe('ok');
    expect(tracker.admit('s3', '192.0.2.1')).toBe('per-ip');
    expect(tracker.admit('s4', '192.0.2.2')).toBe('ok');
    expect(tracker.admit('s5', '192.0.2.3')).toBe('total');
    tracker.release('s1');
    expect(tracker.countFor('192.0.2.1')).toBe(1);
    expect(tracker.admit('s6', '192.0.2.1')).toBe('ok');
  });

  test('releasing an unknown or already released session changes nothing', () => {
    const tracker = new ConnectionTracker(10, 10);
    tracker.admit('s1', '192.0.2.1');
    tracker.release('never-admitted');
    tracker.release('s1');
    tracker.release('s1');
    expect(tracker.total).toBe(0);
    expect(tracker.countFor('192.0.2.1')).toBe(0);
  });
});
