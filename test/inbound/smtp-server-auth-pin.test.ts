import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerAuthentication } from 'smtp-server';
import { RawSmtpClient } from '../support/smtp-client';

/**
 * authentication.ts refuses an AUTH PLAIN authorization identity other than the user (RFC 4616) and
 * relies on smtp-server for the parts of the token: `authzid` and `authcid` as sent, and `username`
 * = authcid, or the authzid when the authcid is empty. This pins that contract on the installed
 * smtp-server, so an upgrade that changes it fails here rather than letting authzids through.
 */

const plain = (authzid: string, authcid: string, password: string): string => Buffer.from(`${authzid}\0${authcid}\0${password}`, 'utf8').toString('base64');

describe('smtp-server passes the AUTH PLAIN token parts to onAuth', () => {
  let server: SMTPServer;
  let port: number;
  const seen: Array<Pick<SMTPServerAuthentication, 'method' | 'username' | 'authzid' | 'authcid' | 'password'>> = [];

  beforeAll(async () => {
    server = new SMTPServer({
      logger: false,
      authMethods: ['PLAIN'],
      allowInsecureAuth: true,
      disabledCommands: ['STARTTLS'],
      onAuth(auth, _session, callback) {
        seen.push({ method: auth.method, username: auth.username, authzid: auth.authzid, authcid: auth.authcid, password: auth.password });
        callback(null, { user: auth.username });
      },
    });
    server.on('error', () => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test.each([
    ['authzid differs from authcid', ['bob', 'alice', 'pw'], { username: 'alice', authzid: 'bob', authcid: 'alice' }],
    ['empty authzid', ['', 'alice', 'pw'], { username: 'alice', authzid: '', authcid: 'alice' }],
    ['empty authcid: the authzid names the user', ['alice', '', 'pw'], { username: 'alice', authzid: 'alice', authcid: '' }],
  ] as const)('%s', async (_label, [authzid, authcid, password], expected) => {
    seen.length = 0;
    const client = await RawSmtpClient.connect(port, { timeoutMs: 5_000 });
    try {
      expect((await client.command('EHLO client.test')).code).toBe(250);
      expect((await client.command(`AUTH PLAIN ${plain(authzid, authcid, password)}`)).code).toBe(235);
    } finally {
      client.close();
    }
    expect(seen).toEqual([{ method: 'PLAIN', password, ...expected }]);
  });
});
