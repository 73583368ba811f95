import { AbuseThrottle } from '../../src/inbound/abuse-throttle';
import { RawSmtpClient } from '../support/smtp-client';
import { HOSTNAME, startTestInbound, USER } from './harness';

describe('AbuseThrottle', () => {
  test('blocks an address after maxStrikes within the window, and forgets old strikes', () => {
    let now = 0;
    const throttle = new AbuseThrottle(3, 1_000, 100, () => now);
    throttle.strike('192.0.2.1');
    throttle.strike('192.0.2.1');
    expect(throttle.blocked('192.0.2.1')).toBe(false);
    throttle.strike('192.0.2.1');
    expect(throttle.blocked('192.0.2.1')).toBe(true);
    expect(throttle.blocked('192.0.2.2')).toBe(false);
    now = 1_001;
    expect(throttle.blocked('192.0.2.1')).toBe(false);
  });

  test('remembers a bounded number of addresses, dropping the least recently struck', () => {
    const throttle = new AbuseThrottle(1, 60_000, 2);
    throttle.strike('192.0.2.1');
    throttle.strike('192.0.2.2');
    throttle.strike('192.0.2.3');
    expect(throttle.blocked('192.0.2.1')).toBe(false);
    expect(throttle.blocked('192.0.2.2')).toBe(true);
    expect(throttle.blocked('192.0.2.3')).toBe(true);
  });
});

describe('per-IP penalty for repeated failed sessions', () => {
  test('an address closed twice for failed AUTH is refused at connect; another address is not', async () => {
    const t = await startTestInbound({ auth: { maxFailures: 1 }, limits: { maxAbusePerIp: 2 } });
    try {
      const bad = Buffer.from(`\0${USER}\0wrong`).toString('base64');
      for (let i = 0; i < 2; i++) {
        const client = await RawSmtpClient.connect(t.port('submission'), { localAddress: '127.0.0.5' });
        await client.command('EHLO client.test');
        await client.startTls({ ca: [t.cert], servername: HOSTNAME });
        await client.command('EHLO client.test');
        expect((await client.command(`AUTH PLAIN ${bad}`)).code).toBe(421);
        await client.waitClosed();
      }
      const refused = await RawSmtpClient.connect(t.port('submission'), { localAddress: '127.0.0.5' });
      expect(refused.greeting.lines[0]).toBe('421 4.7.0 Too many failed attempts from your address, try again later');
      await refused.waitClosed();
      const other = await RawSmtpClient.connect(t.port('submission'), { localAddress: '127.0.0.6' });
      expect(other.greeting.code).toBe(220);
      other.close();
      expect(t.logs.some((l) => l.event === 'connection-refused' && l.reason === 'abuse' && l.ip === '127.0.0.5')).toBe(true);
    } finally {
      await t.close();
    }
  });
});
