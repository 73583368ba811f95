import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { loadConfig } from '../../src/config/load';
import { splitReceivedHeader } from '../../src/inbound/received-header';
import { silentLogger } from '../../src/log/logger';
import { createStore } from '../../src/store';
import type { Store } from '../../src/store/types';
import { startRedis, type RedisHandle } from '../support/redis-server';
import { relayFixture, runCli, startRelayProcess, type RelayFixture, type RelayProcess } from '../support/relay-process';

/**
 * The relay as a user runs it: `bin/sealgate` child processes, real TLS submission with nodemailer,
 * the CLI against the same store, and a SIGKILL straight after a 250.
 */

const PASSWORD = 'correct horse battery staple';

function rawMessage(tag: string): Buffer {
  // 8-bit bytes and a long body so "byte-identical" means something.
  const body = Array.from({ length: 2000 }, (_, i) => `line ${i} of ${tag}: caf\u00e9 \u2713`).join('\r\n');
  return Buffer.from(
    `From: Clinic <clinic@sender.test>\r\nTo: patient@tls13.test\r\nSubject: results ${tag}\r\nMessage-ID: <${tag}@sender.test>\r\n` +
      `Date: Fri, 27 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${body}\r\n`,
    'utf8',
  );
}

async function submit(port: number, secure: boolean, raw: Buffer, auth = true): Promise<string> {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure,
    requireTLS: !secure,
    auth: auth ? { user: 'alice', pass: PASSWORD } : undefined,
    tls: { rejectUnauthorized: false, servername: 'relay.test' },
  });
  try {
    const info = await transport.sendMail({ envelope: { from: 'clinic@sender.test', to: ['patient@tls13.test', 'lab@partner.test'] }, raw });
    return info.response;
  } finally {
    transport.close();
  }
}

function queueIdFrom(response: string): string {
  const match = /queued as (\S+)/.exec(response);
  if (!match) throw new Error(`no queue id in ${response}`);
  return match[1]!;
}

async function readBody(store: Store, id: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await store.openBody(id)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe.each(['file', 'redis'] as const)('relay with the %s store', (backend) => {
  let fixture: RelayFixture;
  let redis: RedisHandle | undefined;
  let env: NodeJS.ProcessEnv;
  let relay: RelayProcess | undefined;

  beforeAll(async () => {
    // Delivery off: these tests are about acceptance and the queue, so messages must stay queued.
    const delivery = { enabled: false };
    fixture = relayFixture(backend === 'redis' ? { delivery, queue: { path: 'queue', redis: { prefix: `relay-test-${process.pid}` } } } : { delivery });
    redis = backend === 'redis' ? await startRedis() : undefined;
    env = redis ? { SEALGATE_REDIS_URL: redis.url } : {};
    const added = await runCli(['--config', fixture.configFile, 'user', 'add', 'alice'], { input: `${PASSWORD}\n`, env });
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
  });

  afterEach(async () => {
    await relay?.stop('SIGKILL');
    relay = undefined;
  });

  afterAll(async () => {
    await redis?.stop();
    fixture.remove();
  });

  test('user list shows the user without the password hash', async () => {
    const listed = await runCli(['--config', fixture.configFile, 'user', 'list', '--json'], { env });
    expect(listed.code).toBe(0);
    const users = JSON.parse(listed.stdout) as Array<Record<string, unknown>>;
    expect(users.map((u) => u.name)).toEqual(['alice']);
    expect(listed.stdout).not.toMatch(/scrypt|hash/i);
  });

  test('STARTTLS and implicit TLS submissions get a queue id that `queue list` shows', async () => {
    relay = await startRelayProcess(fixture.configFile, env);
    const viaStarttls = queueIdFrom(await submit(relay.ports.submission!, false, rawMessage(`starttls-${backend}`)));
    const viaImplicit = queueIdFrom(await submit(relay.ports.submissions!, true, rawMessage(`implicit-${backend}`)));

    const listed = await runCli(['--config', fixture.configFile, 'queue', 'list', '--json'], { env });
    expect(listed.code).toBe(0);
    const entries = JSON.parse(listed.stdout) as Array<Record<string, unknown>>;
    const entry = entries.find((e) => e.id === viaStarttls);
    expect(entry).toMatchObject({
      id: viaStarttls,
      messageId: `<starttls-${backend}@sender.test>`,
      from: 'clinic@sender.test',
      // The stored message is the submission plus the one Received header the relay prepends.
      size: expect.any(Number),
      recipients: expect.arrayContaining([
        { address: 'patient@tls13.test', domain: 'tls13.test', state: 'queued' },
        { address: 'lab@partner.test', domain: 'partner.test', state: 'queued' },
      ]),
    });
    expect(entry!.size).toBeGreaterThan(rawMessage(`starttls-${backend}`).length);
    expect(Number.isNaN(Date.parse(String(entry!.receivedAt)))).toBe(false);
    expect(entries.map((e) => e.id)).toContain(viaImplicit);

    const table = await runCli(['--config', fixture.configFile, 'queue', 'list'], { env });
    expect(table.stdout).toMatch(new RegExp(`${viaStarttls}\\s+clinic@sender.test\\s+\\S*tls13.test\\S*`));
    // The accepted-message log line carries envelope facts but never the subject.
    const accepted = relay.logs.filter((l) => JSON.stringify(l).includes(viaStarttls));
    expect(accepted.length).toBeGreaterThan(0);
    expect(JSON.stringify(relay.logs)).not.toContain('results starttls');
  });

  test('a message acknowledged just before SIGKILL is in the queue after restart, byte-identical', async () => {
    relay = await startRelayProcess(fixture.configFile, env);
    const raw = rawMessage(`sigkill-${backend}`);
    const id = queueIdFrom(await submit(relay.ports.smarthost!, false, raw, false));
    relay.child.kill('SIGKILL');
    await relay.stop();

    relay = await startRelayProcess(fixture.configFile, env);
    const { config } = loadConfig(fixture.configFile, { ...process.env, ...env });
    const store = createStore(config, silentLogger());
    await store.open();
    try {
      const message = await store.getMessage(id);
      expect(message?.jobs.map((j) => j.domain).sort()).toEqual(['partner.test', 'tls13.test']);
      const stored = splitReceivedHeader(await readBody(store, id));
      expect(stored?.received).toMatch(/^Received: from [\s\S]*\sby relay\.test \(Sealgate\)/);
      expect(stored?.submitted.equals(raw)).toBe(true);
      expect(message?.size).toBe(stored!.received.length + raw.length);
    } finally {
      await store.close();
    }
  });
});

describe('start-up errors', () => {
  test('a bad config names the key and the relay exits non-zero', async () => {
    const fixture = relayFixture({ limits: { maxRecipients: 'lots' } });
    try {
      const result = await runCli(['--config', fixture.configFile, 'start']);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/limits\.maxRecipients: /);
    } finally {
      fixture.remove();
    }
  });

  test('a second relay on the same file spool is refused with the first one named', async () => {
    const fixture = relayFixture();
    const first = await startRelayProcess(fixture.configFile);
    try {
      const second = await runCli(['--config', fixture.configFile, 'start']);
      expect(second.code).not.toBe(0);
      expect(second.stderr).toContain(String(first.child.pid));
    } finally {
      await first.stop('SIGKILL');
      fixture.remove();
    }
  });

  test('the development certificate is generated once and reused', async () => {
    const fixture = relayFixture();
    try {
      const first = await startRelayProcess(fixture.configFile);
      await first.stop();
      expect(first.logs.some((l) => l.level === 'warn' && /development/i.test(String(l.msg)))).toBe(true);
      const certDir = path.join(fixture.queuePath, 'dev-tls');
      const snapshot = () =>
        readdirSync(certDir)
          .sort()
          .map((name) => readFileSync(path.join(certDir, name), 'utf8'));
      const before = snapshot();
      expect(before.join()).toContain('BEGIN CERTIFICATE');
      const second = await startRelayProcess(fixture.configFile);
      await second.stop();
      expect(snapshot()).toEqual(before);
    } finally {
      fixture.remove();
    }
  });
});
