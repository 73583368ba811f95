import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/load';
import { FallbackService } from '../../src/fallback';
import { silentLogger } from '../../src/log/logger';
import { PortalService } from '../../src/portal/service';
import type { PortalParts } from '../../src/portal/service/wiring';
import { FileStore } from '../../src/store/file/file-store';
import { FakeCopies, FakeNotices } from '../portal/service/fakes';
import { chunked, evidence, newMessage } from '../store/contract';
import { runCliInProcess, type CliRun } from './in-process';

/**
 * `sealgate portal ...`, `sealgate evidence verify` and the portal part of `sealgate audit`, run in-process on a
 * file store in a temp dir, with in-memory portal copies and notices given through buildProgram's options.
 */

let dir: string;
let configFile: string;
let store: FileStore;
let copies: FakeCopies;
let notices: FakeNotices;
let parts: PortalParts;
let queueId: string;
let ids: string[];

beforeEach(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-portal-cli-'));
  configFile = path.join(dir, 'sealgate.yaml');
  writeFileSync(
    configFile,
    JSON.stringify({
      listeners: [{ name: 'smtp', port: 0, tls: 'starttls', auth: 'required' }],
      queue: { backend: 'file', path: path.join(dir, 'queue') },
      audit: { file: path.join(dir, 'audit.log') },
      log: { level: 'error' },
      portal: { publicUrl: 'https://portal.clinic.test', keyFile: path.join(dir, 'keys.json') },
    }),
  );
  writeFileSync(path.join(dir, 'keys.json'), '{}', { mode: 0o600 }); // the real keyring is not read here: the parts are fakes
  const { config } = loadConfig(configFile);
  store = new FileStore({ path: config.queue.path, keepFinished: 86_400_000, logger: silentLogger() });
  await store.open();
  copies = new FakeCopies();
  notices = new FakeNotices();
  parts = {
    copies,
    notices,
    keys: { addKeyEncryptionKey: async () => 'k2', retireKeyEncryptionKeys: async () => ['k1'], reopen: async () => copies },
  };
  const record = await store.enqueue(newMessage(['a@weak.test', 'b@weak.test']), chunked(Buffer.from('Subject: secret diagnosis\r\n\r\nbody\r\n')), { messageId: '<cli@clinic.test>' });
  queueId = record.id;
  const [claimed] = await store.claimDue('w1', 1, 60_000);
  await store.completeJob(claimed!.job.id, 'w1', {
    recipients: ['a@weak.test', 'b@weak.test'].map((address) => ({ address, outcome: 'diverted' as const, evidence: evidence('diverted', 'starttls-not-offered') })),
  });
  const service = new PortalService({ config, logger: silentLogger(), store, copies, notices, fallback: new FallbackService(store), instance: 'relay' });
  expect(await service.handOverOnce()).toBe(2);
  ids = (await copies.list()).map((i) => i.id);
  await store.close();
});

afterEach(() => {
  jest.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

function cli(...args: string[]): Promise<CliRun> {
  return runCliInProcess(configFile, args, { portalParts: async () => parts });
}

test('portal list: table and --json, --state filter, bad state is a usage error; never content', async () => {
  const table = await cli('portal', 'list');
  expect(table.code).toBe(0);
  expect(table.stdout).toMatch(/^ID\s+QUEUE ID\s+STATE\s+EXPIRES\s+LINK/m);
  expect(table.stdout).toMatch(new RegExp(`${ids[0]}\\s+${queueId}\\s+stored\\s+\\S+\\s+live`));
  expect(table.stdout).toContain('2 items');
  const listed = JSON.parse((await cli('portal', 'list', '--json')).stdout);
  expect(listed.map((i: any) => i.id)).toEqual(ids);
  expect(JSON.stringify(listed)).not.toMatch(/@weak\.test|diagnosis/);
  expect(JSON.parse((await cli('portal', 'list', '--state', 'revoked', '--json')).stdout)).toEqual([]);
  expect((await cli('portal', 'list', '--state', 'nope')).code).toBe(2);
});

test('portal revoke, show, restore: state, trail with the CLI actor, audit file; unknown id 6, wrong state 1', async () => {
  const id = ids[0]!;
  const revoked = await cli('portal', 'revoke', id);
  expect(revoked).toMatchObject({ code: 0, stdout: `${id}: revoked\n` });
  expect((await cli('portal', 'revoke', id)).code).toBe(1);
  expect((await cli('portal', 'revoke', 'nope')).code).toBe(6);

  const shown = await cli('portal', 'show', id);
  expect(shown.stdout).toContain(`Item:        ${id}`);
  expect(shown.stdout).toContain('State:       revoked (revoked from stored)');
  expect(shown.stdout).toMatch(/\b2 {2}\S+ {2}admin\.revoke\s+cli:\S+/);
  expect(shown.stdout).not.toMatch(/@weak\.test|diagnosis/);
  const json = JSON.parse((await cli('portal', 'show', id, '--json')).stdout);
  expect(json.events.map((e: any) => e.type)).toEqual(['portal.stored', 'admin.revoke']);
  expect(json.events[1].actor).toMatch(/^cli:/);

  expect(JSON.parse((await cli('portal', 'restore', id, '--json')).stdout)).toMatchObject({ id, action: 'restore', item: { state: 'stored' } });
  const audit = readFileSync(path.join(dir, 'audit.log'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  expect(audit.map((a) => a.admin?.action ?? a.action)).toEqual(['portal-revoke', 'portal-restore']);
});

test('portal resend, extend, release, purge, rotate-key', async () => {
  const [a, b] = ids as [string, string];
  expect((await cli('portal', 'resend', a)).stdout).toBe(`${a}: new link sent (notice N3)\n`);
  expect(notices.sent).toHaveLength(3);
  const created = copies.items.get(a)!.createdAt;
  const until = new Date(created + 60 * 86_400_000).toISOString();
  expect((await cli('portal', 'extend', a, '--until', until)).stdout).toBe(`${a}: expires ${until}\n`);
  expect((await cli('portal', 'extend', a)).code).toBe(2);
  expect((await cli('portal', 'extend', a, '--by', '400d')).code).toBe(1);
  const released = JSON.parse((await cli('portal', 'release', a, '--json')).stdout);
  expect(released).toMatchObject({ action: 'release', item: { state: 'released', shredded: true } });
  const reopened = new FileStore({ path: path.join(dir, 'queue'), keepFinished: 86_400_000, logger: silentLogger() });
  await reopened.open();
  expect((await reopened.getMessage(released.queueId))!.jobs[0]!.recipients.map((r) => r.address)).toEqual(['a@weak.test']);
  await reopened.close();
  expect((await cli('portal', 'purge', b)).stdout).toBe(`${b}: purged\n`);
  expect(JSON.parse((await cli('portal', 'rotate-key', '--retire', '--json')).stdout)).toEqual({ kid: 'k2', rewrapped: 0, retired: ['k1'] });
});

test('evidence verify: exit 0 when intact, 1 naming the first broken entry', async () => {
  const ok = await cli('evidence', 'verify');
  // The evidence log's line first (empty here), then the portal trails, as before.
  expect(ok).toMatchObject({ code: 0, stdout: 'evidence log: 0 days, 0 records, 0 anchors, open day none: intact\n2 items checked, 2 entries intact, 0 broken\n' });
  await cli('portal', 'revoke', ids[1]!);
  copies.trails.get(ids[1]!)![1]!.detail = { from: 'read' };
  const broken = await cli('evidence', 'verify');
  expect(broken.code).toBe(1);
  expect(broken.stdout).toContain(`BROKEN  item ${ids[1]}: entry 2:`);
  expect(broken.stderr).toContain(`first: ${ids[1]} entry 2`);
  expect((await cli('evidence', 'verify', '--item', ids[0]!)).code).toBe(0);
  const json = JSON.parse((await cli('evidence', 'verify', '--json')).stdout);
  expect(json).toMatchObject({ ok: false, checked: 2, broken: [{ id: ids[1], seq: 2 }] });
  expect((await cli('evidence', 'verify', '--item', 'nope')).code).toBe(6);
});

test('audit shows the portal trail after the delivery evidence; --json stays an array, --json --portal adds it', async () => {
  const text = await cli('audit', queueId);
  expect(text.code).toBe(0);
  const evidenceAt = text.stdout.indexOf('DIVERTED');
  const portalAt = text.stdout.indexOf(`Portal item ${ids[0]} (stored`);
  expect(evidenceAt).toBeGreaterThan(-1);
  expect(portalAt).toBeGreaterThan(evidenceAt);
  expect(text.stdout).toMatch(/portal\.stored\s+relay/);
  const plain = JSON.parse((await cli('audit', queueId, '--json')).stdout);
  expect(Array.isArray(plain)).toBe(true);
  const withPortal = JSON.parse((await cli('audit', queueId, '--json', '--portal')).stdout);
  expect(withPortal.entries).toEqual(plain);
  expect(withPortal.portal.map((p: any) => [p.item.id, p.events.map((e: any) => e.type)])).toEqual(ids.map((id) => [id, ['portal.stored']]));

  rmSync(path.join(dir, 'keys.json'));
  expect(JSON.parse((await cli('audit', queueId, '--json', '--portal')).stdout).portal).toEqual([]);
});
