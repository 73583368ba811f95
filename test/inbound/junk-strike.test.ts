import { RawSmtpClient } from '../support/smtp-client';
import { startTestInbound, type TestInbound } from './harness';

/**
 * smtp-server closes a session itself after 10 unrecognized commands (421), before Sealgate's own
 * limits.maxBadCommands refusal can: that close must still be a strike against the address.
 */

describe('a junk flood cut off by smtp-server is a strike', () => {
  let t: TestInbound;

  beforeAll(async () => {
    t = await startTestInbound({ limits: { maxBadCommands: 10, maxAbusePerIp: 2 } });
  });

  afterAll(async () => {
    await t.close();
  });

  test('two junk sessions from one address, then it is refused at connect; another address is not', async () => {
    for (let session = 0; session < 2; session++) {
      const client = await RawSmtpClient.connect(t.port('submission'), { localAddress: '127.0.0.31', timeoutMs: 5_000 });
      client.write(Array.from({ length: 50 }, (_, i) => `XJUNK${i}\r\n`).join(''));
      const replies: number[] = [];
      for (;;) {
        try {
          replies.push((await client.readReply()).code);
        } catch {
          break;
        }
      }
      client.close();
      expect(replies).toEqual([...Array(9).fill(500), 421]);
    }
    const refused = await RawSmtpClient.connect(t.port('submission'), { localAddress: '127.0.0.31', timeoutMs: 5_000 });
    expect(refused.greeting.lines[0]).toBe('421 4.7.0 Too many failed attempts from your address, try again later');
    refused.close();
    const other = await RawSmtpClient.connect(t.port('submission'), { localAddress: '127.0.0.32', timeoutMs: 5_000 });
    expect(other.greeting.code).toBe(220);
    other.close();
  });
});
