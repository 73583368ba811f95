import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { buildAdminApp } from '../../src/admin/server';
import { LiveConfig } from '../../src/config/live';
import { loadConfig } from '../../src/config/load';
import { createLogger } from '../../src/log/logger';
import type { PolicyRuntime } from '../../src/policy';
import type { EvidenceRecordInput, Store } from '../../src/store/types';

/** GET /api/v1/config and POST /api/v1/reload over a real LiveConfig on a temp file. */

const TOKEN = 'reload-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
const base = {
  listeners: [{ name: 'smtp', port: 0, tls: 'starttls', auth: 'required' }],
  admin: { tokens: [{ name: 'ops', token: TOKEN }] },
  audit: { file: null },
};

let dir: string;
let file: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-reload-api-'));
  file = path.join(dir, 'sealgate.yaml');
  writeFileSync(file, stringify(base));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function app() {
  const live = new LiveConfig(loadConfig(file, {}), (f) => loadConfig(f, {}));
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) });
  // Admin actions go to the store's evidence log first, then to the (here: main) log.
  const evidence: EvidenceRecordInput[] = [];
  const appendEvidence = async (records: readonly EvidenceRecordInput[]) => (evidence.push(...records), []);
  const admin = await buildAdminApp({
    config: live.current,
    store: { kind: 'file', ping: async () => undefined, appendEvidence } as unknown as Store,
    policy: {} as PolicyRuntime,
    logger: createLogger('info', sink),
    configStatus: () => live.status(),
    reload: () => live.reload(),
  });
  const actions = () => lines.map((l) => JSON.parse(l) as { event?: string; admin?: Record<string, unknown> }).filter((l) => l.event === 'admin-action');
  return { admin, live, actions, evidence };
}

test('/healthz and /api/v1/config show the running digest; a reload answers what changed and is recorded with the token name', async () => {
  const { admin, live, actions, evidence } = await app();
  const started = live.status();
  expect((await admin.inject({ method: 'GET', url: '/healthz' })).json()).toMatchObject({ status: 'ok', version: expect.any(String), config: { digest: started.digest, loadedAt: started.loadedAt } });
  expect((await admin.inject({ method: 'GET', url: '/api/v1/config' })).statusCode).toBe(401);
  expect((await admin.inject({ method: 'GET', url: '/api/v1/config', headers: auth })).json()).toEqual(started);

  writeFileSync(file, stringify({ ...base, domains: { 'partner.example': { level: 'portal' } } }));
  const reloaded = await admin.inject({ method: 'POST', url: '/api/v1/reload', headers: auth });
  expect(reloaded.statusCode).toBe(200);
  expect(reloaded.json()).toMatchObject({ reloaded: true, previousDigest: started.digest, changed: ['domains.partner.example'] });
  expect(reloaded.json().digest).not.toBe(started.digest);
  expect(live.current.domains['partner.example']?.level).toBe('portal');
  expect((await admin.inject({ method: 'GET', url: '/api/v1/config', headers: auth })).json()).toMatchObject({ digest: reloaded.json().digest, reloads: 1 });
  expect(actions()).toEqual([expect.objectContaining({ admin: expect.objectContaining({ actor: 'ops', action: 'config-reload', id: reloaded.json().digest, changed: ['domains.partner.example'] }) })]);
  expect(evidence).toEqual([expect.objectContaining({ kind: 'admin-action', actor: 'admin:ops', data: expect.objectContaining({ action: 'config-reload', id: reloaded.json().digest }) })]);
  await admin.close();
});

test('a restart-only change answers 409 naming the key, an invalid file 422; the running config stays', async () => {
  const { admin, live, actions } = await app();
  const before = live.status().digest;
  writeFileSync(file, stringify({ ...base, listeners: [{ ...base.listeners[0], port: 2600 }] }));
  const restart = await admin.inject({ method: 'POST', url: '/api/v1/reload', headers: auth });
  expect(restart.statusCode).toBe(409);
  expect(restart.json()).toMatchObject({ error: 'reload-refused', restartKeys: ['listeners'], digest: before });
  expect(restart.json().message).toMatch(/listeners cannot change while the relay runs/);

  writeFileSync(file, 'listeners: [}\n');
  const invalid = await admin.inject({ method: 'POST', url: '/api/v1/reload', headers: auth });
  expect(invalid.statusCode).toBe(422);
  expect(invalid.json()).toMatchObject({ error: 'reload-refused', restartKeys: [], message: expect.stringMatching(/not valid YAML/) });
  expect(live.status()).toMatchObject({ digest: before, reloads: 0, failedReloads: 2 });
  expect(actions().map((a) => a.admin?.action)).toEqual(['config-reload-refused', 'config-reload-refused']);
  await admin.close();
});
