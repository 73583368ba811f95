import http from 'node:http';
import { relayFixture, runCli, startRelayProcess, type RelayFixture, type RelayProcess } from '../support/relay-process';
import { RawSmtpClient, type RawConnectOptions } from '../support/smtp-client';
import { standardScenarios, startWorld, type World } from '../support/world';

/**
 * A relay process aimed at a test world, with one user and an admin token, for attacks replayed
 * from outside. Listeners: `submission` (STARTTLS, AUTH required), `submissions` (implicit TLS,
 * AUTH required) and `smarthost` (STARTTLS, AUTH optional, trusted only from 127.0.0.1): any other
 * 127.0.0.x is an untrusted, unauthenticated client there.
 */

export const USER = 'alice';
export const PASSWORD = 'correct horse battery staple';
export const ADMIN_TOKEN = 'abuse-admin-token-0123456789';
/** The relay's hostname (the certificate is the generated development one). */
export const RELAY_HOST = 'relay.test';

export interface AbuseRig {
  world: World;
  fixture: RelayFixture;
  relay: RelayProcess;
  adminPort: number;
  stop(): Promise<void>;
}

export async function startAbuseRig(overrides: Record<string, unknown> = {}): Promise<AbuseRig> {
  const world = await startWorld(standardScenarios());
  let fixture: RelayFixture | undefined;
  try {
    fixture = relayFixture({
      ...world.relayConfig(),
      listeners: [
        { name: 'submission', host: '127.0.0.1', port: 0, tls: 'starttls', auth: 'required' },
        { name: 'submissions', host: '127.0.0.1', port: 0, tls: 'implicit', auth: 'required' },
        { name: 'smarthost', host: '127.0.0.1', port: 0, tls: 'starttls', auth: 'optional', trustedNetworks: ['127.0.0.1/32'] },
      ],
      delivery: { retrySchedule: ['1s'], pollInterval: '200ms' },
      admin: { port: 0, tokens: [{ name: 'ops', token: ADMIN_TOKEN }] },
      ...overrides,
    });
    const added = await runCli(['--config', fixture.configFile, 'user', 'add', USER], { input: `${PASSWORD}\n` });
    if (added.code !== 0) throw new Error(`user add failed: ${added.stderr}`);
    const relay = await startRelayProcess(fixture.configFile);
    const started = relay.logs.find((l) => l.event === 'admin-started');
    const adminPort = Number(started?.port ?? 0);
    const f = fixture;
    return {
      world,
      fixture: f,
      relay,
      adminPort,
      async stop() {
        await relay.stop('SIGKILL');
        await world.stop();
        f.remove();
      },
    };
  } catch (err) {
    fixture?.remove();
    await world.stop();
    throw err;
  }
}

/** Connects (optionally from another 127.0.0.x) and, for STARTTLS listeners, does EHLO + STARTTLS + EHLO. */
export async function connectTls(port: number, opts: RawConnectOptions & { implicit?: boolean } = {}): Promise<RawSmtpClient> {
  const tls = { rejectUnauthorized: false, servername: RELAY_HOST };
  if (opts.implicit) {
    const client = await RawSmtpClient.connect(port, { ...opts, tls });
    await client.command('EHLO client.test');
    return client;
  }
  const client = await RawSmtpClient.connect(port, opts);
  await client.command('EHLO client.test');
  const started = await client.startTls(tls);
  if (started.code !== 220) throw new Error(`STARTTLS refused: ${started.lines.join(' ')}`);
  await client.command('EHLO client.test');
  return client;
}

export function plainToken(authzid: string, authcid: string, password: string): string {
  return Buffer.from(`${authzid}\0${authcid}\0${password}`, 'utf8').toString('base64');
}

/** A GET against the admin API from a chosen loopback source address. */
export function adminGet(port: number, path: string, opts: { token?: string; localAddress?: string } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: '127.0.0.1', port, path, method: 'GET', localAddress: opts.localAddress, agent: false, headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {}, timeout: 10_000 },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
      },
    );
    request.on('timeout', () => request.destroy(new Error('admin request timed out')));
    request.on('error', reject);
    request.end();
  });
}

/** A message with the given extra header lines and body (CRLF line ends; the final dot is added by the caller). */
export function message(tag: string, opts: { headers?: string; body?: string } = {}): string {
  return `${opts.headers ?? ''}From: <app@sender.test>\r\nTo: <patient@tls13.test>\r\nSubject: abuse ${tag}\r\nMessage-ID: <${tag}@sender.test>\r\n\r\n${opts.body ?? `body of ${tag}\r\n`}`;
}
