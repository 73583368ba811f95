import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { buildAdminApp } from '../../src/admin/server';
import { parseConfig } from '../../src/config/load';
import { FallbackService } from '../../src/fallback';
import { createLogger, silentLogger } from '../../src/log/logger';
import type { PolicyRuntime } from '../../src/policy';
import { PortalService } from '../../src/portal/service';
import { FileStore } from '../../src/store/file/file-store';
import { FakeCopies, FakeNotices } from '../portal/service/fakes';
import { chunked, evidence, newMessage } from '../store/contract';

/** /api/v1/portal/items with app.inject(): the portal service over a file store and in-memory copies. */

const TOKEN = 'inject-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
const DAY = 86_400_000;

let dir: string;
let store: FileStore;
let copies: FakeCopies;
let notices: FakeNotices;
let logs: string[];

function config() {
  return parseConfig({ listeners: [{ name: 'smtp', port: 0, tls: 'starttls', auth: 'required' }], admin: { tokens: [{ name: 'ops', token: TOKEN, scopes: ['read', 'operate', 'portal'] }] } }, {}, dir);
}

async function app(withPortal = true) {
  const cfg = config();
  const portal = new PortalService({ config: cfg, logger: silentLogger(), store, copies, notices, fallback: new FallbackService(store), instance: 'r1' });
  const sink = new Writable({ write: (chunk, _enc, done) => (logs.push(String(chunk)), done()) });
  const admin = await buildAdminApp({ config: cfg, store, policy: {} as PolicyRuntime, logger: createLogger('info', sink), ...(withPortal ? { portal } : {}) });
  return { admin, portal };
}

beforeEach(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-portal-admin-'));
  // The spool in a folder of its own: its evidence log goes beside it, inside the temp folder.
  store = new FileStore({ path: path.join(dir, 'queue'), keepFinished: DAY, logger: silentLogger() });
  await store.open();
  copies = new FakeCopies();
  notices = new FakeNotices();
  logs = [];
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function handedOverItems(portal: PortalService, addresses: string[]): Promise<string[]> {
  await store.enqueue(newMessage(addresses), chunked(Buffer.from('Subject: secret diagnosis\r\n\r\nbody\r\n')), { messageId: '<m@clinic.test>' });
  const [claimed] = await store.claimDue('w1', 1, 60_000);
  await store.completeJob(claimed!.job.id, 'w1', { recipients: addresses.map((address) => ({ address, outcome: 'diverted' as const, evidence: evidence('diverted', 'starttls-not-offered') })) });
  expect(await portal.handOverOnce()).toBe(addresses.length);
  return (await copies.list()).map((i) => i.id);
}

test('list and show: metadata and trail, never content; filters by state; unknown ids 404; bad states 400', async () => {
  const { admin, portal } = await app();
  const [a, b] = await handedOverItems(portal, ['a@weak.test', 'b@weak.test']);
  const list = await admin.inject({ method: 'GET', url: '/api/v1/portal/items', headers: auth });
  expect(list.statusCode).toBe(200);
  expect(list.json()).toMatchObject({ total: 2, limit: 100, offset: 0, items: [{ id: a, state: 'stored', linkLive: true }, { id: b }] });
  expect(list.body).not.toMatch(/@weak\.test|diagnosis|sealed|wrapped/);

  await admin.inject({ method: 'POST', url: `/api/v1/portal/items/${b}/revoke`, headers: auth });
  expect((await admin.inject({ method: 'GET', url: '/api/v1/portal/items?state=revoked', headers: auth })).json().items.map((i: any) => i.id)).toEqual([b]);
  expect((await admin.inject({ method: 'GET', url: '/api/v1/portal/items?state=bogus', headers: auth })).statusCode).toBe(400);

  const shown = await admin.inject({ method: 'GET', url: `/api/v1/portal/items/${b}`, headers: auth });
  expect(shown.json()).toMatchObject({
    item: { id: b, state: 'revoked', revokedFrom: 'stored' },
    events: [
      { seq: 1, type: 'portal.stored' },
      { seq: 2, type: 'admin.revoke', actor: 'admin:ops' },
    ],
  });
  expect(shown.body).not.toMatch(/@weak\.test|diagnosis/);
  const missing = await admin.inject({ method: 'GET', url: '/api/v1/portal/items/nope', headers: auth });
  expect(missing.statusCode).toBe(404);
  expect(missing.json()).toMatchObject({ error: 'not-found' });
  expect((await admin.inject({ method: 'GET', url: '/api/v1/portal/items' })).statusCode).toBe(401);
  await admin.close();
});

test('revoke, restore, resend, purge: state changes, 409 when impossible, admin actions logged', async () => {
  const { admin, portal } = await app();
  const [id] = await handedOverItems(portal, ['a@weak.test']);
  const post = (op: string) => admin.inject({ method: 'POST', url: `/api/v1/portal/items/${id}/${op}`, headers: auth });
  expect((await post('revoke')).json()).toMatchObject({ id, action: 'revoke', item: { state: 'revoked' } });
  const again = await post('revoke');
  expect(again.statusCode).toBe(409);
  expect(again.json()).toMatchObject({ error: 'conflict' });
  expect((await post('restore')).json().item.state).toBe('stored');
  const resent = (await post('resend')).json();
  expect(resent).toMatchObject({ action: 'resend', noticeQueueId: 'N2' });
  expect(notices.sent.map((n) => n.kind)).toEqual(['portal-link', 'portal-link']);
  expect((await post('purge')).json().item).toMatchObject({ state: 'purged', shredded: true, linkLive: false });
  expect((await post('restore')).statusCode).toBe(409);
  const actions = logs
    .map((l) => JSON.parse(l))
    .filter((l) => l.event === 'admin-action')
    .map((l) => l.admin.action);
  expect(actions).toEqual(['portal-revoke', 'portal-restore', 'portal-resend', 'portal-purge']);
  await admin.close();
});

test('extend takes exactly one of until or by, within bounds', async () => {
  const { admin, portal } = await app();
  const [id] = await handedOverItems(portal, ['a@weak.test']);
  const { createdAt: created, expiresAt } = copies.items.get(id!)!;
  const extend = (payload: object) => admin.inject({ method: 'POST', url: `/api/v1/portal/items/${id}/extend`, headers: auth, payload });
  const by = await extend({ by: '10d' });
  expect(by.statusCode).toBe(200);
  expect(by.json().item.expiresAt).toBe(new Date(expiresAt + 10 * DAY).toISOString());
  const until = new Date(created + 100 * DAY).toISOString();
  expect((await extend({ until })).json().item.expiresAt).toBe(until);
  expect((await extend({})).statusCode).toBe(400);
  expect((await extend({ until, by: 5 })).statusCode).toBe(400);
  expect((await extend({ until: 'soon' })).statusCode).toBe(400);
  expect((await extend({ by: 'forever' })).statusCode).toBe(400);
  expect((await extend({ other: 1 })).statusCode).toBe(400);
  const tooLate = await extend({ until: new Date(created + 366 * DAY).toISOString() });
  expect(tooLate.statusCode).toBe(409);
  expect(tooLate.json().message).toMatch(/365 days/);
  await admin.close();
});

test('release queues a new message to the one recipient', async () => {
  const { admin, portal } = await app();
  const [id] = await handedOverItems(portal, ['a@weak.test', 'b@weak.test']);
  const released = await admin.inject({ method: 'POST', url: `/api/v1/portal/items/${id}/release`, headers: auth });
  expect(released.statusCode).toBe(200);
  const { queueId, item } = released.json();
  expect(item.state).toBe('released');
  const message = await store.getMessage(queueId);
  expect(message!.jobs.flatMap((j) => j.recipients.map((r) => r.address))).toEqual([copies.facts_.get(id!)!.recipient]);
  await admin.close();
});

test('without a portal service the routes answer 503; the external-portal routes keep working', async () => {
  const { admin } = await app(false);
  const list = await admin.inject({ method: 'GET', url: '/api/v1/portal/items', headers: auth });
  expect(list.statusCode).toBe(503);
  expect(list.json()).toMatchObject({ error: 'unavailable' });
  const claim = await admin.inject({ method: 'POST', url: '/api/v1/portal/claim', headers: auth, payload: { owner: 'ext' } });
  expect(claim.statusCode).toBe(200);
  expect(claim.json()).toEqual({ items: [] });
  await admin.close();
});
