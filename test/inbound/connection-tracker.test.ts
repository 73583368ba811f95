import { admissionDecision, ConnectionTracker, fairShare, loadDeadline } from '../../src/inbound/connection-tracker';

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

describe('admission under load', () => {
  const limits = { maxTotal: 200, maxPerIp: 20, stressLoad: 0.5, reserve: 20 };

  test('below stressLoad only the plain caps apply', () => {
    expect(admissionDecision(limits, 99, 19, 5)).toBe('ok');
    expect(admissionDecision(limits, 99, 20, 5)).toBe('per-ip');
    expect(admissionDecision(limits, 200, 0, 5)).toBe('total');
  });

  test('from stressLoad an address holding its fair share is refused, a new address is not', () => {
    // 180 unreserved slots shared by 9 addresses and one more: 18 each.
    expect(fairShare(limits, 9)).toBe(18);
    expect(admissionDecision(limits, 100, 17, 9)).toBe('ok');
    expect(admissionDecision(limits, 100, 18, 9)).toBe('fair-share');
    expect(admissionDecision(limits, 100, 0, 9)).toBe('ok');
  });

  test('the reserve at the top of the cap is only for addresses holding nothing', () => {
    expect(admissionDecision(limits, 180, 1, 50)).toBe('fair-share');
    expect(admissionDecision(limits, 180, 0, 50)).toBe('ok');
    expect(admissionDecision(limits, 199, 0, 50)).toBe('ok');
    expect(admissionDecision(limits, 200, 0, 50)).toBe('total');
  });

  test.each([
    [200, 20],
    [150, 20],
    [60, 10],
  ])('10 addresses x 19 sockets cannot lock out an 11th address (maxConnections %i, per IP %i)', (maxTotal, maxPerIp) => {
    const tracker = new ConnectionTracker(maxTotal, maxPerIp, { stressLoad: 0.5, reserve: Math.ceil(maxTotal * 0.1) });
    let n = 0;
    for (let a = 10; a < 20; a++) for (let i = 0; i < 19; i++) tracker.admit(`s${n++}`, `127.0.0.${a}`);
    expect(tracker.total).toBeLessThan(maxTotal);
    expect(tracker.admit('eleventh', '127.0.0.20')).toBe('ok');
  });

  test('without stress options the tracker keeps the plain caps (fair share off)', () => {
    const tracker = new ConnectionTracker(10, 10);
    for (let i = 0; i < 10; i++) expect(tracker.admit(`s${i}`, '192.0.2.1')).toBe('ok');
    expect(tracker.load).toBe(1);
  });
});

describe('loadDeadline', () => {
  test('full value up to stressLoad, then linear down to the stressed value half-way to full, flat after', () => {
    const at = (load: number) => loadDeadline(load, 10_000, 3_000, 0.5);
    expect(at(0)).toBe(10_000);
    expect(at(0.5)).toBe(10_000);
    expect(at(0.625)).toBe(6_500);
    expect(at(0.75)).toBe(3_000);
    expect(at(1)).toBe(3_000);
  });

  test('a stressed value above the normal one never lengthens the deadline; stressLoad 1 turns it off', () => {
    expect(loadDeadline(0.9, 5_000, 8_000, 0.5)).toBe(5_000);
    expect(loadDeadline(1, 10_000, 3_000, 1)).toBe(10_000);
  });
});
