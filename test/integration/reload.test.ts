import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import nodemailer from 'nodemailer';
import { stringify } from 'yaml';
import { addUser } from '../../src/auth/users';
import { relayFixture, relayTestConfig, startRelayProcess, type RelayFixture, type RelayProcess } from '../support/relay-process';
import { until } from '../support/wait';
import { leafCertificate, startWorld, type CertPair, type World } from '../support/world';

/**
 * A real relay process reloaded with SIGHUP: what changes takes effect for new work (the next message,
 * session or TLS connection), work in flight finishes under the config it started with, a reload that
 * cannot be applied is refused naming the key and the relay goes on serving. One relay for the suite.
 */

const SLOW = 'slow.test';
const MX = `mx1.${SLOW}`;
/** Long enough to reload while the MX holds the first message's DATA. */
const DATA_DELAY_MS = 3_000;
const PASSWORD = 'correct horse battery staple';

function message(tag: string): Buffer {
  return Buffer.from(`From: <clinic@sender.test>\r\nTo: <patient@${SLOW}>\r\nSubject: ${tag}\r\nMessage-ID: <${tag}@sender.test>\r\n\r\nbody ${tag}\r\n`);
}

async function send(port: number, to: string[], raw: Buffer, auth?: { user: string; pass: string }) {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, requireTLS: true, tls: { rejectUnauthorized: false }, ...(auth ? { auth } : {}) });
  try {
    return await transport.sendMail({ envelope: { from: 'clinic@sender.test', to }, raw });
  } finally {
    transport.close();
  }
}

const queueIdOf = (response: string) => /queued as (\S+)/.exec(response)![1]!;

/** The certificate a new implicit-TLS connection is served. */
async function implicitTlsFingerprint(port: number): Promise<string> {
  const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
  try {
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    return socket.getPeerX509Certificate()!.fingerprint256;
  } finally {
    socket.destroy();
  }
}

/** The certificate a new STARTTLS session is served. */
async function starttlsFingerprint(port: number): Promise<string> {
  const plain = net.connect({ host: '127.0.0.1', port });
  let seen = '';
  const waitFor = (pattern: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (pattern.test(seen)) {
          plain.off('data', onData);
          resolve();
        }
      };
      const onData = (chunk: Buffer) => {
        seen += chunk.toString();
        check();
      };
      plain.on('data', onData).once('error', reject);
      check();
    });
  try {
    await waitFor(/^220 /m);
    plain.write('EHLO client.test\r\n');
    await waitFor(/^250 /m);
    seen = '';
    plain.write('STARTTLS\r\n');
    await waitFor(/^220 /m);
    const secure = tls.connect({ socket: plain, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
    const fingerprint = secure.getPeerX509Certificate()!.fingerprint256;
    secure.destroy();
    return fingerprint;
  } finally {
    plain.destroy();
  }
}

describe('reloading a running relay (SIGHUP)', () => {
  let world: World;
  let fixture: RelayFixture;
  let relay: RelayProcess;
  let config: Record<string, unknown>;
  let first: CertPair;
  let renewed: CertPair;
  const certFile = () => path.join(fixture.dir, 'cert.pem');
  const keyFile = () => path.join(fixture.dir, 'key.pem');

  const writeConfig = (next: Record<string, unknown>) => writeFileSync(fixture.configFile, stringify(next));

  /** Sends SIGHUP and waits for the reload's log line: 'config-reloaded' or 'config-reload-refused'. */
  async function reload(): Promise<Record<string, unknown>> {
    const seen = relay.logs.length;
    relay.child.kill('SIGHUP');
    return until('the reload log line', () => relay.logs.slice(seen).find((l) => l.event === 'config-reloaded' || l.event === 'config-reload-refused'), 10_000, 50);
  }

  const attempt = (queueId: string) =>
    until('the delivery attempt of ' + queueId, () => relay.logs.find((l) => l.event === 'job-attempted' && l.queueId === queueId && !('deferred' in (l.outcomes as object))), 20_000);

  beforeAll(async () => {
    world = await startWorld({ [SLOW]: { mx: [{ host: MX, tls: 'tls13', dataDelayMs: DATA_DELAY_MS }] } });
    first = await leafCertificate('valid', 'relay.test');
    renewed = await leafCertificate('valid', 'relay-renewed.test');
    fixture = relayFixture();
    writeFileSync(certFile(), first.cert);
    writeFileSync(keyFile(), first.key);
    await addUser(fixture.usersFile, 'alice', PASSWORD);
    config = relayTestConfig({ tls: { cert: certFile(), key: keyFile() }, delivery: { retrySchedule: ['1s'], pollInterval: '200ms' }, ...world.relayConfig() });
    writeConfig(config);
    relay = await startRelayProcess(fixture.configFile);
  });

  afterAll(async () => {
    await relay?.stop();
    await world?.stop();
    fixture?.remove();
  });

  test('a domain level changed while a delivery is in flight: that message is delivered, the next one is diverted', async () => {
    const inFlight = queueIdOf((await send(relay.ports.smarthost!, [`patient@${SLOW}`], message('in-flight'))).response);
    // The MX holds DATA: the delivery has started under level encrypt.
    await until('the MX to hold DATA', () => world.mx(MX).events.find((e) => e.kind === 'data-delayed'), 15_000);
    config = { ...config, domains: { [SLOW]: { level: 'portal' } } };
    writeConfig(config);
    const reloaded = await reload();
    expect(reloaded).toMatchObject({ event: 'config-reloaded', changed: [`domains.${SLOW}`] });

    const next = queueIdOf((await send(relay.ports.smarthost!, [`patient@${SLOW}`], message('after-reload'))).response);
    expect(await attempt(next)).toMatchObject({ outcomes: { diverted: 1 } });
    expect(await attempt(inFlight)).toMatchObject({ outcomes: { delivered: 1 } });
    const received = world.mx(MX).received.map((m) => m.raw.toString());
    expect(received.some((raw) => raw.includes('Message-ID: <in-flight@sender.test>'))).toBe(true);
    expect(received.some((raw) => raw.includes('after-reload'))).toBe(false);
    expect(relay.child.exitCode).toBeNull();
  });

  test('a lower limits.maxRecipients applies to the next session', async () => {
    const recipients = ['a', 'b', 'c'].map((name) => `${name}@elsewhere.test`);
    expect((await send(relay.ports.smarthost!, recipients, message('three-before'))).rejected).toEqual([]);
    config = { ...config, limits: { minFreeDisk: 0, maxRecipients: 2 } };
    writeConfig(config);
    expect(await reload()).toMatchObject({ event: 'config-reloaded', changed: ['limits.maxRecipients'] });
    const after = await send(relay.ports.smarthost!, recipients, message('three-after'));
    expect(after.accepted).toHaveLength(2);
    expect(after.rejected).toHaveLength(1);
  });

  test('a new users file: its user can AUTH after the reload', async () => {
    const usersFile = path.join(fixture.dir, 'users-new.json');
    await addUser(usersFile, 'bob', PASSWORD);
    const bob = { user: 'bob', pass: PASSWORD };
    await expect(send(relay.ports.submission!, ['x@elsewhere.test'], message('bob-before'), bob)).rejects.toThrow(/535/);
    config = { ...config, auth: { usersFile: 'users-new.json' } };
    writeConfig(config);
    expect(await reload()).toMatchObject({ event: 'config-reloaded' });
    const info = await send(relay.ports.submission!, ['x@elsewhere.test'], message('bob-after'), bob);
    expect(info.response).toMatch(/^250 /);
  });

  test('a renewed certificate at the same path is served to new connections; an open one keeps its own', async () => {
    const firstPrint = new X509Certificate(first.cert).fingerprint256;
    const renewedPrint = new X509Certificate(renewed.cert).fingerprint256;
    expect(await implicitTlsFingerprint(relay.ports.submissions!)).toBe(firstPrint);
    const open = tls.connect({ host: '127.0.0.1', port: relay.ports.submissions!, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => open.once('secureConnect', resolve).once('error', reject));
    try {
      writeFileSync(certFile(), renewed.cert);
      writeFileSync(keyFile(), renewed.key);
      expect(await reload()).toMatchObject({ event: 'config-reloaded', changed: [] });
      expect(await implicitTlsFingerprint(relay.ports.submissions!)).toBe(renewedPrint);
      expect(await starttlsFingerprint(relay.ports.submission!)).toBe(renewedPrint);
      // The session opened before the reload goes on, with the certificate it was served.
      expect(open.getPeerX509Certificate()!.fingerprint256).toBe(firstPrint);
      const reply = new Promise<string>((resolve) => open.on('data', (chunk: Buffer) => /^250 /m.test(chunk.toString()) && resolve(chunk.toString())));
      open.write('EHLO open.test\r\n');
      expect(await reply).toMatch(/^250/m);
    } finally {
      open.destroy();
    }
  });

  test('a missing certificate file or a changed listener port is refused naming the key; the relay serves on unchanged', async () => {
    const healthz = async () => {
      const started = relay.logs.find((l) => l.event === 'admin-started') as { url?: string; port?: number } | undefined;
      const port = started?.port ?? Number(/:(\d+)/.exec(String(started?.url))?.[1]);
      return (await fetch(`http://127.0.0.1:${port}/healthz`)).json() as Promise<{ config: { digest: string } }>;
    };
    const digest = (await healthz()).config.digest;
    const renewedPrint = new X509Certificate(renewed.cert).fingerprint256;

    writeConfig({ ...config, tls: { cert: path.join(fixture.dir, 'missing.pem'), key: keyFile() } });
    const missing = await reload();
    expect(missing).toMatchObject({ event: 'config-reload-refused', digest });
    expect(String(missing.err)).toMatch(/tls\.cert/);

    const listeners = (config.listeners as Array<Record<string, unknown>>).map((l) => (l.name === 'submission' ? { ...l, port: 1 } : l));
    writeConfig({ ...config, listeners });
    const moved = await reload();
    expect(moved).toMatchObject({ event: 'config-reload-refused', digest });
    expect(String(moved.err)).toMatch(/listeners cannot change/);

    expect((await healthz()).config.digest).toBe(digest);
    expect(await implicitTlsFingerprint(relay.ports.submissions!)).toBe(renewedPrint);
    expect((await send(relay.ports.smarthost!, ['y@elsewhere.test'], message('after-refusal'))).response).toMatch(/^250 /);
    expect(relay.child.exitCode).toBeNull();
    writeConfig(config);
  });
});
