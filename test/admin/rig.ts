import { readFileSync } from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { loadConfig } from '../../src/config/load';
import { silentLogger } from '../../src/log/logger';
import { createStore } from '../../src/store';
import type { Store } from '../../src/store/types';
import { startRedis, type RedisHandle } from '../support/redis-server';
import { relayFixture, runCli, startRelayProcess, type RelayFixture, type RelayProcess } from '../support/relay-process';
import { standardScenarios, startWorld, type World } from '../support/world';

/**
 * One test world plus one relay process per backend, with the admin API on a free loopback port.
 * Deferred jobs wait an hour (retrySchedule 1h), so a tempfail.test message stays deferred until
 * an admin acts; `fix-<backend>.test` has an MX without STARTTLS whose address can be repointed at
 * a compliant MX (A record TTL 1 s) to "fix" the domain.
 */

export type Backend = 'file' | 'redis';
export const BACKENDS: Backend[] = ['file', 'redis'];
/** Has every scope (read, operate, content, portal, metrics). */
export const TOKEN = 'ops-token-0123456789abcdef';
export const TOKEN_NAME = 'ops';

export function fixDomain(backend: Backend): string {
  return `fix-${backend}.test`;
}

export async function startRigWorld(): Promise<World> {
  const spec = standardScenarios();
  for (const backend of BACKENDS) spec[fixDomain(backend)] = { mx: [{ host: `mx1.${fixDomain(backend)}`, tls: 'none' }] };
  const world = await startWorld(spec);
  for (const backend of BACKENDS) {
    const host = `mx1.${fixDomain(backend)}`;
    world.dns.set(host, 'A', [world.addressOf(host)], 1);
  }
  return world;
}

/** Points the fix domain's MX host at the compliant TLS 1.3 MX. */
export function fixTheDomain(world: World, backend: Backend): void {
  world.dns.set(`mx1.${fixDomain(backend)}`, 'A', [world.addressOf('mx1.tls13.test')], 1);
}

export interface Rig {
  backend: Backend;
  fixture: RelayFixture;
  relay: RelayProcess;
  redis?: RedisHandle;
  /** A store opened by the test itself (for comparing bodies, setting up portal claims). */
  store: Store;
  adminPort: number;
  api(method: string, urlPath: string, options?: { body?: unknown; token?: string | null }): Promise<{ status: number; json: any; text: string; headers: Headers }>;
  cli(...args: string[]): ReturnType<typeof runCli>;
  submit(recipients: string[], tag: string): Promise<{ id: string; raw: Buffer; messageId: string }>;
  /** Polls GET /queue/:id until the predicate holds (bounded). */
  waitForMessage(id: string, predicate: (detail: any) => boolean, timeoutMs?: number): Promise<any>;
  auditLines(): Array<Record<string, any>>;
  stop(): Promise<void>;
}

export async function startRig(backend: Backend, world: World, extra: Record<string, unknown> = {}): Promise<Rig> {
  const redis = backend === 'redis' ? await startRedis() : undefined;
  const queue = redis ? { path: 'queue', backend: 'redis', redis: { url: redis.url, prefix: redis.prefix } } : { path: 'queue' };
  const fixture = relayFixture({
    ...world.relayConfig(),
    queue,
    delivery: { retrySchedule: ['1h'], pollInterval: '200ms' },
    audit: { file: 'audit.log' },
    admin: { port: 0, tokens: [{ name: TOKEN_NAME, token: TOKEN, scopes: ['read', 'operate', 'content', 'portal', 'metrics'] }] },
    ...extra,
  });
  let relay: RelayProcess;
  try {
    relay = await startRelayProcess(fixture.configFile, { SEALGATE_ADMIN_TOKEN: '' });
  } catch (err) {
    fixture.remove();
    await redis?.stop();
    throw err;
  }
  const started = relay.logs.find((l) => l.event === 'admin-started');
  const adminPort = Number(started?.port);
  const store = createStore(loadConfig(fixture.configFile, {}).config, silentLogger());
  await store.open();
  const base = `http://127.0.0.1:${adminPort}`;

  const rig: Rig = {
    backend,
    fixture,
    relay,
    redis,
    store,
    adminPort,
    async api(method, urlPath, options = {}) {
      const headers: Record<string, string> = {};
      const token = options.token === undefined ? TOKEN : options.token;
      if (token !== null) headers.authorization = `Bearer ${token}`;
      if (options.body !== undefined) headers['content-type'] = 'application/json';
      const response = await fetch(base + urlPath, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body), signal: AbortSignal.timeout(20_000) });
      const text = await response.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: response.status, json, text, headers: response.headers };
    },
    cli: (...args) => runCli(['--config', fixture.configFile, ...args], { env: { SEALGATE_ADMIN_TOKEN: '' } }),
    async submit(recipients, tag) {
      const messageId = `<${tag}.${backend}.${Date.now()}@sender.test>`;
      const raw = Buffer.from(
        `From: Clinic <clinic@sender.test>\r\nTo: undisclosed-recipients:;\r\nSubject: private ${tag}\r\nMessage-ID: ${messageId}\r\n` +
          `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nResults ${tag} \u2713\r\n`,
      );
      const transport = nodemailer.createTransport({ host: '127.0.0.1', port: relay.ports.smarthost, secure: false, requireTLS: true, tls: { rejectUnauthorized: false } });
      try {
        const info = await transport.sendMail({ envelope: { from: 'clinic@sender.test', to: recipients }, raw });
        return { id: /queued as (\S+)/.exec(info.response)![1]!, raw, messageId };
      } finally {
        transport.close();
      }
    },
    async waitForMessage(id, predicate, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      let last: unknown;
      while (Date.now() < deadline) {
        const { status, json } = await rig.api('GET', `/api/v1/queue/${id}`);
        last = json;
        if (status === 200 && predicate(json)) return json;
        await new Promise((r) => setTimeout(r, 150));
      }
      throw new Error(`message ${id} did not reach the expected state: ${JSON.stringify(last)}`);
    },
    auditLines() {
      const file = path.join(fixture.dir, 'audit.log');
      return readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, any>);
    },
    async stop() {
      await store.close().catch(() => undefined);
      await rig.relay.stop(); // a test may have restarted it

      await redis?.stop();
      fixture.remove();
    },
  };
  return rig;
}

export function stateOf(detail: any, address: string): string | undefined {
  for (const job of detail.jobs ?? []) for (const r of job.recipients) if (r.address === address) return r.state;
  return undefined;
}

export async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
