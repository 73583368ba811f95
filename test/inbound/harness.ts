import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { addUser, UserDirectory } from '../../src/auth/users';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import { loadOrCreateInboundCertificate } from '../../src/inbound/dev-certificate';
import { splitReceivedHeader } from '../../src/inbound/received-header';
import { startInbound, type InboundHandle } from '../../src/inbound/server';
import { defaultTlsProfile } from '../../src/policy/tls-profile';
import { createStore } from '../../src/store';
import type { Store } from '../../src/store/types';

export const USER = 'alice';
export const PASSWORD = 'correct horse battery staple';
export const RESTRICTED_USER = 'bob';
export const HOSTNAME = 'sealgate.test';

export interface LogLine {
  level: string;
  event?: string;
  [key: string]: unknown;
}

export interface TestInbound {
  config: Config;
  store: Store;
  inbound: InboundHandle;
  cert: string;
  logs: LogLine[];
  dir: string;
  port(listener: string): number;
  close(): Promise<void>;
}

/**
 * Starts the real inbound server with the file store in a temp dir, the generated development
 * certificate, two users, and listeners on 127.0.0.1 port 0.
 */
export async function startTestInbound(raw: { listeners?: unknown[]; limits?: Record<string, unknown>; auth?: Record<string, unknown>; queue?: Record<string, unknown> } = {}): Promise<TestInbound> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-inbound-'));
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) logs.push(JSON.parse(line) as LogLine);
      cb();
    },
  });
  const logger = pino({ level: 'debug', formatters: { level: (label) => ({ level: label }) } }, sink);
  const config = parseConfig(
    {
      hostname: HOSTNAME,
      queue: { path: path.join(dir, 'queue'), ...raw.queue },
      auth: { usersFile: path.join(dir, 'users.json'), ...raw.auth },
      listeners: raw.listeners ?? [
        { name: 'submission', host: '127.0.0.1', port: 0, tls: 'starttls', auth: 'required' },
        { name: 'submissions', host: '127.0.0.1', port: 0, tls: 'implicit', auth: 'required' },
        { name: 'smarthost', host: '127.0.0.1', port: 0, tls: 'starttls', auth: 'optional', trustedNetworks: ['127.0.0.0/8'] },
        { name: 'untrusted', host: '127.0.0.1', port: 0, tls: 'starttls', auth: 'optional', trustedNetworks: ['10.0.0.0/8'] },
      ],
      limits: { minFreeDisk: 1, ...raw.limits },
    },
    {},
    dir,
  );
  const store = createStore(config, logger);
  await store.open();
  let inbound: InboundHandle | undefined;
  try {
    const tls = await loadOrCreateInboundCertificate(config, logger);
    await addUser(config.auth.usersFile, USER, PASSWORD);
    await addUser(config.auth.usersFile, RESTRICTED_USER, PASSWORD, { allowedSenderDomains: ['allowed.example'] });
    inbound = await startInbound({ config, store, logger, profile: defaultTlsProfile(), users: new UserDirectory(config.auth.usersFile), tls });
    const started = inbound;
    return {
      config,
      store,
      inbound: started,
      cert: tls.cert,
      logs,
      dir,
      port(name) {
        const found = started.listeners.find((l) => l.name === name);
        if (!found) throw new Error(`no listener ${name}`);
        return found.port;
      },
      async close() {
        await started.close();
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await inbound?.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Splits the Received header Sealgate prepends from the bytes the client sent. */
export function splitReceived(body: Buffer): { received: string; rest: Buffer } {
  const split = splitReceivedHeader(body);
  if (!split) throw new Error('stored body does not start with a Received header');
  return { received: split.received, rest: split.submitted };
}

export async function readBody(store: Store, id: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await store.openBody(id)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Waits (bounded) for a condition that becomes true asynchronously, e.g. a log line. */
export async function eventually(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
