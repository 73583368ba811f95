import { mkdtempSync, promises as fs, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildAdminApp } from '../../src/admin/server';
import { parseConfig } from '../../src/config/load';
import { silentLogger } from '../../src/log/logger';
import type { PolicyRuntime } from '../../src/policy';
import type { PortalAdmin } from '../../src/admin/routes/portal-items';
import { evidenceDay } from '../../src/store/evidence-chain';
import { FileEvidenceLog } from '../../src/store/file/evidence';
import { FileStore } from '../../src/store/file/file-store';
import { outcomeInput } from '../store/evidence-contract';

/** GET /evidence/verify and POST /evidence/prune over a file store's evidence log, with app.inject(). */

const DAY = 86_400_000;
const today = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate());
const daysAgo = (n: number) => today - n * DAY + 12 * 3_600_000;
const D5 = evidenceDay(daysAgo(5));
const D4 = evidenceDay(daysAgo(4));
const auth = { authorization: 'Bearer operator-token-0123456789abcdef' };

let dir: string;
let store: FileStore;
let app: FastifyInstance;

beforeEach(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-evidence-api-'));
  let clock = 0;
  const log = new FileEvidenceLog({ path: path.join(dir, 'queue'), keepFinished: 3_600_000, logger: silentLogger(), now: () => clock });
  for (const [n, at] of [daysAgo(5), daysAgo(4), daysAgo(3)].entries()) {
    clock = at;
    await log.appendEvidence([outcomeInput(n * 10 + 1), outcomeInput(n * 10 + 2)]);
  }
  const config = parseConfig(
    {
      listeners: [{ name: 'smtp', port: 0, tls: 'starttls', auth: 'required' }],
      queue: { backend: 'file', path: path.join(dir, 'queue'), keepFinished: '1h' },
      evidence: { retention: '2d' },
      admin: { tokens: [{ name: 'ops', token: 'operator-token-0123456789abcdef', scopes: ['read', 'operate'] }] },
    },
    {},
    dir,
  );
  store = new FileStore({ path: path.join(dir, 'queue'), keepFinished: 3_600_000, logger: silentLogger() });
  await store.open();
  app = await buildAdminApp({
    config,
    store,
    policy: {} as PolicyRuntime,
    logger: silentLogger(),
    metrics: { render: async () => ({ contentType: 'text/plain', body: '' }) },
    readiness: async () => ({ ready: true, checks: {} }),
    portal: { list: async () => [] } as unknown as PortalAdmin,
  });
});

afterEach(async () => {
  await app.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

test('verify answers the verification, and names the first broken entry after an edit', async () => {
  const ok = await app.inject({ method: 'GET', url: '/api/v1/evidence/verify', headers: auth });
  expect(ok.statusCode).toBe(200);
  expect(ok.json()).toMatchObject({ ok: true, days: 3, records: 6, anchors: 2, firstBroken: null });
  const segment = path.join(dir, 'evidence', 'segments', `${D4}.jsonl`);
  await fs.writeFile(segment, (await fs.readFile(segment, 'utf8')).replace('user11@', 'user99@'));
  const broken = await app.inject({ method: 'GET', url: `/api/v1/evidence/verify?from=${D4}`, headers: auth });
  expect(broken.json()).toMatchObject({ ok: false, fromDay: D4, firstBroken: { day: D4, line: 1, seq: 3 } });
  expect((await app.inject({ method: 'GET', url: `/api/v1/evidence/verify?to=${D5}`, headers: auth })).json()).toMatchObject({ ok: true, days: 1 });
  expect((await app.inject({ method: 'GET', url: '/api/v1/evidence/verify?from=2026-13-01', headers: auth })).statusCode).toBe(400);
});

test('prune removes the old days, records itself with the token as actor, and refuses inside the retention', async () => {
  const refused = await app.inject({ method: 'POST', url: '/api/v1/evidence/prune', headers: auth, payload: { before: evidenceDay(daysAgo(1)) } });
  expect(refused.statusCode).toBe(409);
  expect(refused.json()).toMatchObject({ error: 'refused', field: 'before' });
  const pruned = await app.inject({ method: 'POST', url: '/api/v1/evidence/prune', headers: auth, payload: { before: D4 } });
  expect(pruned.statusCode).toBe(200);
  expect(pruned.json()).toMatchObject({ before: D4, days: [D5], records: 2, base: { prunedThrough: D5, lastSeq: 2 }, recorded: { seq: 7, kind: 'evidence-pruned', actor: 'admin:ops' } });
  expect((await app.inject({ method: 'GET', url: '/api/v1/evidence/verify', headers: auth })).json()).toMatchObject({ ok: true, records: 5 });
  expect((await app.inject({ method: 'POST', url: '/api/v1/evidence/prune', headers: auth, payload: {} })).statusCode).toBe(400);
});
