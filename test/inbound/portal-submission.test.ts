import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { verifyPassword } from '../../src/auth/users';
import { HOSTNAME, PASSWORD, readBody, splitReceived, startTestInbound, USER, type TestInbound } from './harness';

/** X-Sealgate-Portal-* headers through the real inbound server and the file store. */

const DAY = 86_400_000;
const SECRET = 'PASSPHRASE-CANARY-7c1e';

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    return statSync(file).isDirectory() ? filesUnder(file) : [file];
  });
}

describe('per-message portal headers over SMTP', () => {
  let t: TestInbound;
  beforeAll(async () => {
    t = await startTestInbound();
  });
  afterAll(async () => {
    await t.close();
  });

  test('are stripped from the stored message, become params.portal, and the passphrase is stored only as a hash', async () => {
    const raw = [
      'From: Alice <alice@sender.example>',
      'To: bob@dest.example',
      'Subject: lab results',
      'X-Sealgate-Portal-Notify: no',
      'x-sealgate-portal-expiry: 7d',
      'X-SEALGATE-PORTAL-METHODS: secret,',
      ' email-otp',
      `X-Sealgate-Portal-Secret: ${SECRET}`,
      'Message-ID: <portal-1@sender.example>',
      '',
      'Hello.',
      'X-Sealgate-Portal-Notify: yes (a body line, kept)',
      '',
    ].join('\r\n');
    const info = await nodemailer
      .createTransport({ host: '127.0.0.1', port: t.port('submission'), requireTLS: true, auth: { user: USER, pass: PASSWORD }, tls: { ca: [t.cert], servername: HOSTNAME }, name: 'client.test' })
      .sendMail({ envelope: { from: 'alice@sender.example', to: ['bob@dest.example'] }, raw });
    const id = /^250 2\.0\.0 Ok: queued as (\S+)$/.exec(info.response)![1]!;

    const stored = splitReceived(await readBody(t.store, id)).rest.toString('utf8');
    const [header, body] = stored.split('\r\n\r\n');
    expect(header).not.toMatch(/x-sealgate-portal-/i);
    expect(header).toBe('From: Alice <alice@sender.example>\r\nTo: bob@dest.example\r\nSubject: lab results\r\nMessage-ID: <portal-1@sender.example>');
    expect(body).toBe('Hello.\r\nX-Sealgate-Portal-Notify: yes (a body line, kept)\r\n');

    const record = await t.store.getMessage(id);
    expect(record!.headers).toMatchObject({ messageId: '<portal-1@sender.example>' });
    expect(record!.params.portal).toMatchObject({ notify: false, expiry: 7 * DAY, methods: ['secret', 'email-otp'] });
    await expect(verifyPassword(SECRET, record!.params.portal!.secretHash!)).resolves.toBe(true);

    // The grep reaches the spool: the stored body is among these files.
    expect(filesUnder(t.dir).some((file) => readFileSync(file).includes('lab results'))).toBe(true);
    for (const file of filesUnder(t.dir)) expect({ file, hasSecret: readFileSync(file).includes(SECRET) }).toEqual({ file, hasSecret: false });
    expect(JSON.stringify(t.logs)).not.toContain(SECRET);
  });
});
