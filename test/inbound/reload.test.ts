import { readFileSync } from 'node:fs';
import path from 'node:path';
import { addUser, UserDirectory } from '../../src/auth/users';
import type { Config } from '../../src/config/schema';
import { defaultTlsProfile } from '../../src/policy/tls-profile';
import { RawSmtpClient } from '../support/smtp-client';
import { HOSTNAME, PASSWORD, startTestInbound, type TestInbound } from './harness';

/** A reconfigured inbound (a reload): sessions open keep what they started with, new sessions get the new config. */

const plainToken = (user: string, password: string) => Buffer.from(`\0${user}\0${password}`).toString('base64');

describe('inbound after reconfigure', () => {
  let t: TestInbound;
  const clients: RawSmtpClient[] = [];

  beforeAll(async () => {
    t = await startTestInbound();
  });
  afterEach(() => {
    for (const client of clients.splice(0)) client.close();
  });
  afterAll(async () => {
    await t?.close();
  });

  async function session(listener: string): Promise<RawSmtpClient> {
    const client = await RawSmtpClient.connect(t.port(listener));
    clients.push(client);
    expect((await client.command('EHLO client.test')).code).toBe(250);
    expect((await client.startTls({ ca: [t.cert], servername: HOSTNAME })).code).toBe(220);
    expect((await client.command('EHLO client.test')).code).toBe(250);
    return client;
  }

  /** Switches the running inbound over to `config` (what the listeners reload step does), with the harness's certificate. */
  const reconfigure = (config: Config, users = new UserDirectory(config.auth.usersFile)) =>
    t.inbound.reconfigure({ config, profile: defaultTlsProfile(), users, tls: { cert: t.cert, key: readFileSync(path.join(t.config.queue.path, 'dev-tls', 'key.pem'), 'utf8') } });

  test('maxRecipientDomains: the open session keeps the old limit, the next session gets the new one', async () => {
    const open = await session('smarthost');
    expect((await open.command('MAIL FROM:<clinic@sender.test>')).code).toBe(250);
    const original = t.config;
    try {
      reconfigure({ ...original, limits: { ...original.limits, maxRecipientDomains: 1 } });
      expect((await open.command('RCPT TO:<a@one.example>')).code).toBe(250);
      expect((await open.command('RCPT TO:<b@two.example>')).code).toBe(250);

      const next = await session('smarthost');
      expect((await next.command('MAIL FROM:<clinic@sender.test>')).code).toBe(250);
      expect((await next.command('RCPT TO:<a@one.example>')).code).toBe(250);
      expect((await next.command('RCPT TO:<b@two.example>')).code).toBeGreaterThanOrEqual(400);
    } finally {
      reconfigure(original);
    }
  });

  test('users: a session open before the switch authenticates against the old users, a new one against the new', async () => {
    const file = path.join(t.dir, 'users-carol.json');
    await addUser(file, 'carol', PASSWORD);
    const open = await session('submission');
    const original = t.config;
    try {
      reconfigure({ ...original, auth: { ...original.auth, usersFile: file } });
      expect((await open.command(`AUTH PLAIN ${plainToken('carol', PASSWORD)}`)).code).toBe(535);
      const next = await session('submission');
      expect((await next.command(`AUTH PLAIN ${plainToken('carol', PASSWORD)}`)).code).toBe(235);
    } finally {
      reconfigure(original);
    }
  });
});
