import { adminGet, ADMIN_TOKEN, connectTls, PASSWORD, plainToken, startAbuseRig, USER, type AbuseRig } from './relay';
import type { RawSmtpClient } from '../support/smtp-client';

/**
 * Password guessing from outside against a started relay: across sessions (the per-session cap
 * alone let 30 sessions x 2 guesses through, and the right password then worked at once), an AUTH
 * PLAIN authorization identity naming another user, and a flood of wrong admin tokens.
 */

describe('AUTH and admin token abuse from outside', () => {
  let rig: AbuseRig;

  beforeAll(async () => {
    // The default delays (0.5 s doubling to 8 s) and per-address limit (10); a penalty of 12 s so the test can see it end.
    rig = await startAbuseRig({ auth: { usersFile: 'users.json', penaltyTime: '12s' } });
  }, 60_000);

  afterAll(async () => {
    await rig?.stop();
  });

  async function authCode(client: RawSmtpClient, authzid: string, authcid: string, password: string): Promise<number> {
    return (await client.command(`AUTH PLAIN ${plainToken(authzid, authcid, password)}`)).code;
  }

  test('30 sessions x 2 wrong passwords from one address: penalty box, the right password refused until it is over (also on a trusted listener)', async () => {
    const from = '127.0.0.21';
    const waves: number[][] = [];
    // Three waves of 10 concurrent sessions (under the per-address connection cap), 2 guesses each.
    for (let wave = 0; wave < 3; wave++) {
      const codes: number[] = [];
      waves.push(codes);
      const started = Date.now();
      await Promise.all(
        Array.from({ length: 10 }, async (_, s) => {
          const client = await connectTls(rig.relay.ports.submission!, { localAddress: from });
          try {
            for (let guess = 0; guess < 2; guess++) {
              const code = await authCode(client, '', USER, `wrong-${wave}-${s}-${guess}`);
              codes.push(code);
              if (code === 421) break;
            }
          } finally {
            client.close();
          }
        }),
      );
      console.log(`wave ${wave}: ${Date.now() - started} ms, replies ${codes.join(',')}`);
    }
    // The first wave fills the penalty box: the 10th counted failure gets 421 (guesses already being
    // checked when it happened may still get 535); every guess after that gets 454 unchecked.
    const [first, ...rest] = waves;
    expect(first!.filter((c) => c === 421)).toEqual([421]);
    expect(first!.filter((c) => c === 535).length).toBeGreaterThanOrEqual(9);
    expect(first!.every((c) => [535, 421, 454].includes(c))).toBe(true);
    expect(rest.flat()).toEqual(Array(40).fill(454));

    // The right password from that address does not work at once, on any listener, trusted or not.
    const right = await connectTls(rig.relay.ports.submission!, { localAddress: from });
    expect((await right.command(`AUTH PLAIN ${plainToken('', USER, PASSWORD)}`)).lines[0]).toBe('454 4.7.0 Too many failed authentication attempts from your address, try again later');
    right.close();
    const trusted = await connectTls(rig.relay.ports.smarthost!, { localAddress: from });
    expect(await authCode(trusted, '', USER, PASSWORD)).toBe(454);
    trusted.close();

    // Another address is not affected.
    const other = await connectTls(rig.relay.ports.submission!, { localAddress: '127.0.0.22' });
    expect(await authCode(other, '', USER, PASSWORD)).toBe(235);
    other.close();

    // Once the penalty (12 s here) is over the right password works again.
    let recovered = 0;
    for (let attempt = 0; attempt < 20 && recovered !== 235; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const later = await connectTls(rig.relay.ports.submission!, { localAddress: from });
      recovered = await authCode(later, '', USER, PASSWORD);
      later.close();
    }
    expect(recovered).toBe(235);

    // Failed user names never appear in clear in the log.
    const failed = rig.relay.logs.filter((l) => l.event === 'command-rejected' && l.command === 'AUTH');
    expect(failed.length).toBeGreaterThanOrEqual(50);
    expect(failed.every((l) => typeof l.userTag === 'string' && !('user' in l))).toBe(true);
    expect(rig.relay.logs).toContainEqual(expect.objectContaining({ event: 'auth-penalty', ip: from }));
  }, 90_000);

  test('AUTH PLAIN with an authorization identity naming another user is 535; the same password without it works', async () => {
    const client = await connectTls(rig.relay.ports.submission!, { localAddress: '127.0.0.23' });
    try {
      expect((await client.command(`AUTH PLAIN ${plainToken('postmaster', USER, PASSWORD)}`)).lines[0]).toBe('535 5.7.8 Authentication credentials invalid');
      expect(await authCode(client, USER, USER, PASSWORD)).toBe(235);
    } finally {
      client.close();
    }
    expect(rig.relay.logs).toContainEqual(expect.objectContaining({ event: 'command-rejected', reason: 'authzid-mismatch', ip: '127.0.0.23' }));
  });

  test('1000 wrong admin tokens from one address: 401 up to the limit, then 429 with Retry-After, a good token included; /healthz keeps working', async () => {
    const from = '127.0.0.24';
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    // Batches of 50 concurrent requests, 1000 in all.
    for (let batch = 0; batch < 20; batch++) {
      const answers = await Promise.all(Array.from({ length: 50 }, () => adminGet(rig.adminPort, '/api/v1/stats', { token: 'wrong-token-0123456789', localAddress: from })));
      for (const a of answers) {
        statuses.push(a.status);
        if (a.status === 429) retryAfter ??= a.headers['retry-after'];
      }
    }
    expect(statuses.filter((s) => s === 401).length).toBe(10);
    expect(statuses.filter((s) => s === 429).length).toBe(990);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(retryAfter)).toBeLessThanOrEqual(60);
    const good = await adminGet(rig.adminPort, '/api/v1/stats', { token: ADMIN_TOKEN, localAddress: from });
    expect(good.status).toBe(429);
    expect(good.headers['retry-after']).toBeDefined();
    expect((await adminGet(rig.adminPort, '/healthz', { localAddress: from })).status).toBe(200);
    // Another address with the good token is served.
    expect((await adminGet(rig.adminPort, '/api/v1/stats', { token: ADMIN_TOKEN, localAddress: '127.0.0.25' })).status).toBe(200);
  }, 60_000);
});
