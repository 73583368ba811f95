import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../../src/config/load';
import { FallbackService } from '../../../src/fallback';
import { silentLogger } from '../../../src/log/logger';
import { PortalService, settingsFor, startPortal } from '../../../src/portal/service';
import { FileStore } from '../../../src/store/file/file-store';
import { InvalidStateError, NotFoundError, type FallbackItem } from '../../../src/store/types';
import { chunked, evidence, newMessage, readAll } from '../../store/contract';
import { FakeCopies, FakeNotices } from './fakes';

/** The portal service over a real file store (fallback items, bodies) with in-memory copies and notices. */

const DAY = 86_400_000;
const BODY = Buffer.from('From: Dr A <a@clinic.test>\r\nSubject: lab\r\n results\r\nDate: Mon, 1 Jun 2026 10:00:00 +0000\r\n\r\nCANARY body\r\n');

let dir: string;
let store: FileStore;
let fallback: FallbackService;
let copies: FakeCopies;
let notices: FakeNotices;
let clock: number;

function configWith(portal: Record<string, unknown> = {}) {
  return parseConfig({ listeners: [{ name: 'smtp', port: 0, tls: 'starttls', auth: 'required' }], portal: { publicUrl: 'https://portal.clinic.test', ...portal } }, {}, dir);
}

function service(portal: Record<string, unknown> = {}, extra: Partial<ConstructorParameters<typeof PortalService>[0]> = {}): PortalService {
  return new PortalService({ config: configWith(portal), logger: silentLogger(), store, copies, notices, fallback, instance: 'r1', now: () => clock, ...extra });
}

beforeEach(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-portal-service-'));
  store = new FileStore({ path: dir, keepFinished: DAY, logger: silentLogger() });
  await store.open();
  fallback = new FallbackService(store);
  clock = Date.now();
  copies = new FakeCopies(() => clock);
  notices = new FakeNotices();
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function divert(addresses: string[], from = 'sender@clinic.test'): Promise<{ queueId: string; items: FallbackItem[] }> {
  const record = await store.enqueue(newMessage(addresses, { from, receivedAt: Date.now() - 60_000 }), chunked(BODY), { messageId: '<m@clinic.test>' });
  const [claimed] = await store.claimDue('w1', 1, 60_000);
  await store.completeJob(claimed!.job.id, 'w1', {
    recipients: addresses.map((address) => ({ address, outcome: 'diverted' as const, evidence: evidence('diverted', 'starttls-not-offered') })),
  });
  return { queueId: record.id, items: (await fallback.list()).filter((i) => i.queueId === record.id) };
}

async function handedOver(addresses = ['pat@weak.test'], portal: Record<string, unknown> = {}) {
  const svc = service(portal);
  const { queueId, items } = await divert(addresses);
  expect(await svc.handOverOnce()).toBe(items.length);
  return { svc, queueId, items };
}

describe('hand-over', () => {
  test('creates the copy, sends one portal-link notice, records its queue id and acks the fallback item', async () => {
    const { items, queueId } = await handedOver(['pat@weak.test']);
    const item = items[0]!;
    const copy = copies.items.get(item.id)!;
    expect(copy).toMatchObject({ queueId, jobId: item.jobId, state: 'stored', noticeQueueId: 'N1', auth: { methods: ['email-otp'] } });
    expect(copy.expiresAt).toBe(clock + 30 * DAY);
    expect(await readAll(await copies.openMessage(copy))).toEqual(BODY);
    expect(copies.facts(copy)).toEqual({ recipient: 'pat@weak.test', from: 'sender@clinic.test', messageId: '<m@clinic.test>', subject: 'lab results', date: '2026-06-01T10:00:00.000Z' });
    expect(notices.sent).toEqual([
      { kind: 'portal-link', itemId: item.id, to: 'pat@weak.test', link: expect.stringMatching(/^https:\/\/portal\.clinic\.test\/m\/[A-Za-z0-9_-]{43}$/), expiresAt: copy.expiresAt },
    ]);
    expect(copies.byToken(notices.tokenOf(0))?.id).toBe(item.id);
    expect((await fallback.show(item.id)).state).toBe('acked');
    // No notify.sent yet: that comes from the notice's delivery.
    expect((await copies.events(item.id)).map((e) => e.type)).toEqual(['portal.stored']);
  });

  test('the original subject goes into the notice only with includeOriginalSubject', async () => {
    await handedOver(['pat@weak.test'], { includeOriginalSubject: true });
    expect(notices.sent[0]).toMatchObject({ originalSubject: 'lab results' });
  });

  test('a notice that cannot be queued leaves the item claimed (not acked); the replay replaces copy and token', async () => {
    const svc = service();
    const { items } = await divert(['pat@weak.test']);
    notices.failNext = true;
    expect(await svc.handOverOnce()).toBe(0);
    const firstHash = copies.items.get(items[0]!.id)!.tokenHash;
    expect((await fallback.show(items[0]!.id)).state).toBe('claimed');
    clock += 10 * 60_000; // the claim lease (5 min) runs out
    expect(await svc.handOverOnce()).toBe(1);
    expect(copies.items.size).toBe(1);
    expect(copies.items.get(items[0]!.id)!.tokenHash).not.toBe(firstHash);
    expect(notices.sent).toHaveLength(1);
    expect((await fallback.show(items[0]!.id)).state).toBe('acked');
  });

  test('notify off: no notice, still acked', async () => {
    const { items } = await handedOver(['pat@weak.test'], { notify: false });
    expect(notices.sent).toEqual([]);
    expect(copies.items.get(items[0]!.id)!.noticeQueueId).toBeUndefined();
    expect((await fallback.show(items[0]!.id)).state).toBe('acked');
  });

  test("the message's own choices (params.portal) shape the item within the admin's settings; no notice means no reminder", async () => {
    const svc = service({ methods: ['email-otp', 'secret'] });
    const secretHash = 'scrypt$16384$8$1$c2FsdA==$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U=';
    const record = await store.enqueue(
      newMessage(['pat@weak.test'], { receivedAt: Date.now() - 60_000, params: { portal: { notify: false, expiry: 5 * DAY, methods: ['secret'], secretHash } } }),
      chunked(BODY),
      {},
    );
    const [claimed] = await store.claimDue('w1', 1, 60_000);
    await store.completeJob(claimed!.job.id, 'w1', { recipients: [{ address: 'pat@weak.test', outcome: 'diverted', evidence: evidence('diverted', 'starttls-not-offered') }] });
    expect(await svc.handOverOnce()).toBe(1);
    const [item] = await copies.list();
    expect(item).toMatchObject({ queueId: record.id, expiresAt: clock + 5 * DAY, auth: { methods: ['secret'], secretHash } });
    expect(notices.sent).toEqual([]);
    clock += 4 * DAY; // within remindBefore of expiry, unread
    await svc.sweepOnce();
    expect(notices.sent).toEqual([]);
  });

  test('overrides by recipient domain, then by sender address', async () => {
    const portal = {
      overrides: {
        'quiet.test': { notify: false, expiry: '7d' },
        'boss@clinic.test': { expiry: '2d', methods: ['secret'] },
      },
    };
    const config = configWith(portal);
    expect(settingsFor(config.portal, 'x@quiet.test', 'sender@clinic.test')).toEqual({ notify: false, expiry: 7 * DAY, methods: ['email-otp'] });
    expect(settingsFor(config.portal, 'x@QUIET.test', 'Boss@clinic.test')).toEqual({ notify: false, expiry: 2 * DAY, methods: ['secret'] });
    expect(settingsFor(config.portal, 'x@other.test', 'boss@clinic.test')).toEqual({ notify: true, expiry: 2 * DAY, methods: ['secret'] });

    const svc = service(portal);
    await divert(['a@quiet.test']);
    await divert(['b@other.test'], 'boss@clinic.test');
    expect(await svc.handOverOnce()).toBe(2);
    const [a, b] = await copies.list();
    expect(a!.expiresAt).toBe(clock + 7 * DAY);
    // 'secret' needs the sender's passphrase (X-Sealgate-Portal-Secret); without one the recipient gets email-otp.
    expect(b).toMatchObject({ expiresAt: clock + 2 * DAY, auth: { methods: ['email-otp'] } });
    expect(notices.sent.map((n) => n.to)).toEqual(['b@other.test']);
  });
});

describe('notice outcomes', () => {
  test('portal-link delivered: notified and notify.sent with the TLS used', async () => {
    const { svc, items } = await handedOver();
    const id = items[0]!.id;
    await svc.noticeFinished({ queueId: 'N1', itemId: id, kind: 'portal-link', recipient: 'pat@weak.test', outcome: 'delivered', reason: 'notice-delivered', tls: 'TLSv1.2' });
    expect(copies.items.get(id)).toMatchObject({ state: 'notified', notifiedAt: clock });
    expect((await copies.events(id)).at(-1)).toMatchObject({ type: 'notify.sent', actor: 'relay', detail: { tls: 'TLSv1.2', queueId: 'N1', kind: 'portal-link' } });
  });

  test('portal-link bounced: notify-failed and the sender is told which recipient was not', async () => {
    const { svc, items, queueId } = await handedOver();
    const id = items[0]!.id;
    await svc.noticeFinished({ queueId: 'N1', itemId: id, kind: 'portal-link', recipient: 'pat@weak.test', outcome: 'bounced', reason: 'rcpt-550', tls: null });
    expect(copies.items.get(id)!.state).toBe('notify-failed');
    expect((await copies.events(id)).at(-1)).toMatchObject({ type: 'notify.failed', detail: { reason: 'rcpt-550' } });
    const original = await store.getMessage(queueId);
    expect(notices.sent[1]).toEqual({
      kind: 'recipient-not-told',
      itemId: id,
      to: 'sender@clinic.test',
      recipient: 'pat@weak.test',
      queueId,
      reason: 'rcpt-550',
      messageId: '<m@clinic.test>',
      arrivalAt: original!.receivedAt,
    });
  });

  test('the bounce status and reply travel into the DSN; the DSN bouncing in turn tells nobody', async () => {
    const { svc, items } = await handedOver();
    const id = items[0]!.id;
    const bounce = { queueId: 'N1', itemId: id, kind: 'portal-link', recipient: 'pat@weak.test', outcome: 'bounced' as const, reason: 'rcpt-550', tls: null };
    await svc.noticeFinished({ ...bounce, status: '5.1.1', diagnostic: '550 5.1.1 no such user' });
    expect(notices.sent[1]).toMatchObject({ kind: 'recipient-not-told', status: '5.1.1', diagnostic: '550 5.1.1 no such user' });
    await svc.noticeFinished({ queueId: 'N2', itemId: id, kind: 'recipient-not-told', recipient: 'sender@clinic.test', outcome: 'bounced', reason: 'rcpt-550', tls: null });
    await svc.noticeFinished({ queueId: 'N2', kind: 'recipient-not-told', recipient: 'sender@clinic.test', outcome: 'bounced', reason: 'rcpt-550', tls: null });
    expect(notices.sent).toHaveLength(2);
    expect(copies.items.get(id)!.state).toBe('notify-failed');
  });

  test('a reminder or code outcome only records an event; an old notice never changes the state', async () => {
    const { svc, items } = await handedOver();
    const id = items[0]!.id;
    await svc.noticeFinished({ queueId: 'N9', itemId: id, kind: 'expiry-reminder', recipient: 'pat@weak.test', outcome: 'bounced', reason: 'rcpt-550', tls: null });
    await svc.noticeFinished({ queueId: 'N0', itemId: id, kind: 'portal-link', recipient: 'pat@weak.test', outcome: 'bounced', reason: 'rcpt-550', tls: null });
    expect(copies.items.get(id)!.state).toBe('stored');
    expect(notices.sent).toHaveLength(1);
    expect((await copies.events(id)).map((e) => e.type)).toEqual(['portal.stored', 'notify.failed', 'notify.failed']);
  });
});

describe('sweep', () => {
  test('an unread item near expiry gets one reminder with a new link; then expiry shreds it', async () => {
    const { svc, items } = await handedOver();
    const id = items[0]!.id;
    const firstToken = notices.tokenOf(0);
    clock += 26 * DAY; // 4 days left, remindBefore 3 days
    await svc.sweepOnce();
    expect(notices.sent).toHaveLength(1);
    clock += 1.5 * DAY;
    await svc.sweepOnce();
    await svc.sweepOnce();
    expect(notices.sent).toHaveLength(2);
    expect(notices.sent[1]).toMatchObject({ kind: 'expiry-reminder', itemId: id, to: 'pat@weak.test', expiresAt: copies.items.get(id)!.expiresAt });
    expect(copies.byToken(firstToken)).toBeUndefined();
    expect(copies.byToken(notices.tokenOf(1))?.id).toBe(id);
    expect(copies.items.get(id)).toMatchObject({ remindedAt: clock, noticeQueueId: 'N2' });
    expect((await copies.events(id)).at(-1)).toMatchObject({ type: 'expiry.warned', detail: { queueId: 'N2' } });

    clock += 3 * DAY;
    await svc.sweepOnce();
    expect(copies.items.get(id)).toMatchObject({ state: 'expired', wrappedKey: null, sealed: null });
    expect(copies.bodies.has(id)).toBe(false);
    expect((await copies.events(id)).at(-1)).toMatchObject({ type: 'message.expired', actor: 'relay' });
  });

  test('no reminder for a read item, or when remindBefore is null', async () => {
    const { svc, items } = await handedOver(['a@weak.test']);
    await copies.update(items[0]!.id, (i) => ({ ...i, state: 'read' }));
    clock += 28 * DAY;
    await svc.sweepOnce();
    expect(notices.sent).toHaveLength(1);
    const quiet = service({ remindBefore: null });
    await divert(['b@weak.test']);
    await quiet.handOverOnce();
    clock += 28 * DAY;
    await quiet.sweepOnce();
    expect(notices.sent.filter((n) => n.kind === 'expiry-reminder')).toHaveLength(0);
  });

  test('unread-at-expiry: one notice per original message listing only recipients who never read it', async () => {
    const svc = service({ remindBefore: null });
    const first = await divert(['a@weak.test', 'b@weak.test', 'c@weak.test']);
    const second = await divert(['d@weak.test'], 'other@clinic.test');
    await svc.handOverOnce();
    const read = first.items.find((i) => i.recipient === 'b@weak.test')!;
    await copies.update(read.id, (i) => ({ ...i, state: 'read' }));
    clock += 31 * DAY;
    await svc.sweepOnce();
    const unread = notices.sent.filter((n) => n.kind === 'unread-at-expiry');
    expect(unread).toEqual([
      { kind: 'unread-at-expiry', to: 'sender@clinic.test', recipients: ['a@weak.test', 'c@weak.test'], queueId: first.queueId, messageId: '<m@clinic.test>' },
      { kind: 'unread-at-expiry', to: 'other@clinic.test', recipients: ['d@weak.test'], queueId: second.queueId, messageId: '<m@clinic.test>' },
    ]);
    expect((await copies.list()).every((i) => i.state === 'expired')).toBe(true);
  });
});

describe('admin operations', () => {
  test('revoke and restore round trip; both recorded with the actor', async () => {
    const { svc, items } = await handedOver();
    const id = items[0]!.id;
    await copies.update(id, (i) => ({ ...i, state: 'opened' }));
    expect(await svc.revoke(id, 'admin:ops')).toMatchObject({ state: 'revoked', revokedFrom: 'opened' });
    await expect(svc.revoke(id, 'admin:ops')).rejects.toBeInstanceOf(InvalidStateError);
    const restored = await svc.restore(id, 'cli:root');
    expect(restored.state).toBe('opened');
    expect(restored.revokedFrom).toBeUndefined();
    await expect(svc.restore(id, 'cli:root')).rejects.toBeInstanceOf(InvalidStateError);
    expect((await copies.events(id)).slice(-2)).toMatchObject([
      { type: 'admin.revoke', actor: 'admin:ops', detail: { from: 'opened' } },
      { type: 'admin.restore', actor: 'cli:root', detail: { to: 'opened' } },
    ]);
  });

  test('unknown ids are NotFoundError', async () => {
    const svc = service();
    for (const op of [() => svc.revoke('nope', 'a'), () => svc.purge('nope', 'a'), () => svc.show('nope'), () => svc.extend('nope', { by: DAY }, 'a')]) {
      await expect(op()).rejects.toBeInstanceOf(NotFoundError);
    }
  });

  test('purge shreds (also from revoked) and cannot be undone', async () => {
    const { svc, items } = await handedOver();
    const id = items[0]!.id;
    await svc.revoke(id, 'admin:ops');
    expect(await svc.purge(id, 'admin:ops')).toMatchObject({ state: 'purged', wrappedKey: null });
    expect(copies.bodies.has(id)).toBe(false);
    await expect(svc.restore(id, 'admin:ops')).rejects.toBeInstanceOf(InvalidStateError);
    await expect(svc.purge(id, 'admin:ops')).rejects.toBeInstanceOf(InvalidStateError);
    expect((await copies.events(id)).at(-1)).toMatchObject({ type: 'admin.purge', actor: 'admin:ops' });
  });

  test('resend: a new link in a new notice, the old link dies', async () => {
    const { svc, items } = await handedOver();
    const id = items[0]!.id;
    const old = notices.tokenOf(0);
    const { noticeQueueId } = await svc.resend(id, 'admin:ops');
    expect(noticeQueueId).toBe('N2');
    expect(notices.sent[1]).toMatchObject({ kind: 'portal-link', itemId: id, to: 'pat@weak.test' });
    expect(copies.byToken(old)).toBeUndefined();
    expect(copies.byToken(notices.tokenOf(1))?.id).toBe(id);
    expect(copies.items.get(id)!.noticeQueueId).toBe('N2');
    expect((await copies.events(id)).at(-1)).toMatchObject({ type: 'admin.resend', detail: { queueId: 'N2' } });
    await svc.revoke(id, 'admin:ops');
    await expect(svc.resend(id, 'admin:ops')).rejects.toBeInstanceOf(InvalidStateError);
  });

  test('resend refuses to build a dead link (port 0, no publicUrl) and keeps the working one', async () => {
    const { svc, items } = await handedOver(['pat@weak.test'], { publicUrl: null, port: 0 });
    const old = notices.tokenOf(0);
    await expect(svc.resend(items[0]!.id, 'cli:root')).rejects.toThrow(/portal.publicUrl/);
    expect(copies.byToken(old)?.id).toBe(items[0]!.id);
    expect(notices.sent).toHaveLength(1);
  });

  test('extend: by or until, within 1 to 365 days of creation and in the future; clears the reminder', async () => {
    const { svc, items } = await handedOver();
    const id = items[0]!.id;
    const created = copies.items.get(id)!.createdAt;
    await copies.update(id, (i) => ({ ...i, remindedAt: clock }));
    expect((await svc.extend(id, { by: 10 * DAY }, 'admin:ops')).expiresAt).toBe(created + 40 * DAY);
    expect(copies.items.get(id)!.remindedAt).toBeUndefined();
    expect((await svc.extend(id, { until: created + 365 * DAY }, 'admin:ops')).expiresAt).toBe(created + 365 * DAY);
    await expect(svc.extend(id, { until: created + 365 * DAY + 1 }, 'admin:ops')).rejects.toThrow(/between 1 and 365 days/);
    await expect(svc.extend(id, { until: created + DAY - 1 }, 'admin:ops')).rejects.toBeInstanceOf(InvalidStateError);
    clock += 5 * DAY;
    await expect(svc.extend(id, { until: clock - 1 }, 'admin:ops')).rejects.toThrow(/not in the future/);
    expect((await copies.events(id)).filter((e) => e.type === 'admin.extend')).toHaveLength(2);
  });

  test('release: the decrypted copy becomes a new message to that one recipient; the copy is shredded', async () => {
    const { svc, items, queueId } = await handedOver(['a@weak.test', 'b@weak.test']);
    const a = items.find((i) => i.recipient === 'a@weak.test')!;
    const { item, queueId: newId } = await svc.release(a.id, 'admin:ops');
    expect(newId).not.toBe(queueId);
    expect(item).toMatchObject({ state: 'released', wrappedKey: null });
    const message = (await store.getMessage(newId))!;
    expect(message.from).toBe('sender@clinic.test');
    expect(message.jobs.flatMap((j) => j.recipients.map((r) => r.address))).toEqual(['a@weak.test']);
    expect(message.jobs.map((j) => j.state)).toEqual(['queued']);
    expect(message.headers.messageId).toBe('<m@clinic.test>');
    expect(await readAll(await store.openBody(newId))).toEqual(BODY);
    expect((await copies.events(a.id)).slice(-2)).toMatchObject([
      { type: 'admin.release', actor: 'admin:ops', detail: { queueId: newId } },
      { type: 'message.released', detail: { queueId: newId } },
    ]);
    await expect(svc.release(a.id, 'admin:ops')).rejects.toBeInstanceOf(InvalidStateError);
  });

  test('show: metadata and the trail, never facts, keys or token hash; list filters by state', async () => {
    const { svc, items } = await handedOver(['a@weak.test', 'b@weak.test']);
    await svc.revoke(items[0]!.id, 'admin:ops');
    const shown = await svc.show(items[0]!.id);
    expect(shown.item).toMatchObject({ id: items[0]!.id, state: 'revoked', revokedFrom: 'stored', shredded: false, linkLive: true, kid: 'k1' });
    const text = JSON.stringify(shown);
    for (const secret of ['pat@', 'a@weak.test', 'sender@clinic.test', 'lab', copies.items.get(items[0]!.id)!.tokenHash!, 'wrapped']) expect(text).not.toContain(secret);
    expect(shown.events.map((e) => e.type)).toEqual(['portal.stored', 'admin.revoke']);
    expect((await svc.list({ state: 'revoked' })).map((i) => i.id)).toEqual([items[0]!.id]);
    expect(await svc.list()).toHaveLength(2);
  });

  test('verify names the first broken entry of a tampered trail', async () => {
    const { svc, items } = await handedOver(['a@weak.test', 'b@weak.test']);
    await svc.revoke(items[1]!.id, 'admin:ops');
    expect(await svc.verify()).toEqual({ checked: 2, events: 3, broken: [] });
    copies.trails.get(items[1]!.id)![0]!.actor = 'someone-else';
    expect(await svc.verify()).toEqual({ checked: 2, events: 1, broken: [{ id: items[1]!.id, seq: 1, reason: expect.any(String) }] });
    expect((await svc.verify([items[0]!.id])).broken).toEqual([]);
  });

  test('rotateKey: new KEK, rewrap, retire the keys no item uses; the service uses the reopened copies', async () => {
    const reopened = new FakeCopies(() => clock);
    const calls: string[] = [];
    const svc = service(
      {},
      {
        keys: {
          addKeyEncryptionKey: async (file) => (calls.push(`add ${file}`), 'k2'),
          retireKeyEncryptionKeys: async (file, keep) => (calls.push(`retire ${[...keep].sort().join(',')}`), ['k1']),
          reopen: async () => {
            for (const [id, item] of copies.items) reopened.items.set(id, item);
            reopened.kid = 'k2';
            return reopened;
          },
        },
      },
    );
    await divert(['a@weak.test']);
    await svc.handOverOnce();
    expect(await svc.rotateKey('/keys.json')).toEqual({ kid: 'k2', rewrapped: 1, retired: [] });
    expect(calls).toEqual(['add /keys.json']);
    expect(await svc.rotateKey('/keys.json', { retire: true })).toEqual({ kid: 'k2', rewrapped: 1, retired: ['k1'] });
    expect(calls).toEqual(['add /keys.json', 'add /keys.json', 'retire k2']);
    expect(svc.copies).toBe(reopened);
  });
});

test('startPortal runs hand-over and sweep, survives failures, and close() waits', async () => {
  let handOvers = 0;
  let sweeps = 0;
  const runner = startPortal({
    service: {
      handOverOnce: async () => {
        handOvers += 1;
        if (handOvers === 1) throw new Error('store down');
        return 0;
      },
      sweepOnce: async () => {
        sweeps += 1;
      },
    },
    logger: silentLogger(),
    handOverEvery: 5,
    sweepEvery: 5,
  });
  await new Promise((r) => setTimeout(r, 60));
  await runner.close();
  const after = handOvers;
  expect(handOvers).toBeGreaterThan(2);
  expect(sweeps).toBeGreaterThan(2);
  await new Promise((r) => setTimeout(r, 30));
  expect(handOvers).toBe(after);
});

describe('auto-release', () => {
  function checker(compliant: Set<string>, failing = new Set<string>()) {
    const calls: string[] = [];
    return {
      calls,
      compliance: {
        async isCompliant(domain: string): Promise<boolean> {
          calls.push(domain);
          if (failing.has(domain)) throw new Error('dns timeout');
          return compliant.has(domain);
        },
      },
    };
  }

  async function setUp(portal: Record<string, unknown>, compliant: Set<string>, failing?: Set<string>) {
    const { compliance, calls } = checker(compliant, failing);
    const svc = service(portal, { compliance });
    await divert(['a@fixed.test', 'b@fixed.test']);
    await divert(['c@weak.test']);
    expect(await svc.handOverOnce()).toBe(3);
    const byRecipient = new Map((await copies.list()).map((i) => [copies.facts(i).recipient, i.id]));
    return { svc, calls, id: (r: string) => byRecipient.get(r)! };
  }

  test('off by default: the port is never asked and nothing is released', async () => {
    const { svc, calls } = await setUp({}, new Set(['fixed.test', 'weak.test']));
    await svc.sweepOnce();
    expect(calls).toEqual([]);
    expect((await copies.list()).map((i) => i.state)).toEqual(['stored', 'stored', 'stored']);
  });

  test('releases the unread copies of a compliant domain only, as release does (actor relay, auto)', async () => {
    const { svc, calls, id } = await setUp({ autoRelease: true }, new Set(['fixed.test']));
    await copies.update(id('b@fixed.test'), (i) => ({ ...i, state: 'opened' }));
    const before = await store.listMessages();
    await svc.sweepOnce();
    expect(calls.sort()).toEqual(['fixed.test', 'weak.test']);
    expect(copies.items.get(id('a@fixed.test'))).toMatchObject({ state: 'released', wrappedKey: null });
    expect(copies.items.get(id('b@fixed.test'))).toMatchObject({ state: 'released', wrappedKey: null });
    expect(copies.items.get(id('c@weak.test'))!.state).toBe('stored');
    const trail = await copies.events(id('a@fixed.test'));
    expect(trail.map((e) => e.type)).toEqual(['portal.stored', 'message.released']);
    expect(trail.at(-1)).toMatchObject({ actor: 'relay', detail: { auto: true } });
    const added = (await store.listMessages()).filter((m) => !before.some((b) => b.id === m.id));
    expect(added.map((m) => m.jobs.flatMap((j) => j.recipients.map((r) => r.address))).sort()).toEqual([['a@fixed.test'], ['b@fixed.test']]);
    expect(added.every((m) => m.from === 'sender@clinic.test')).toBe(true);
  });

  test('read copies stay in the portal', async () => {
    const { svc, id } = await setUp({ autoRelease: true }, new Set(['fixed.test']));
    await copies.update(id('a@fixed.test'), (i) => ({ ...i, state: 'read' }));
    await svc.sweepOnce();
    expect(copies.items.get(id('a@fixed.test'))!.state).toBe('read');
    expect(copies.items.get(id('b@fixed.test'))!.state).toBe('released');
  });

  test('each domain is checked at most once per autoReleaseCheckEvery', async () => {
    const compliant = new Set<string>();
    const { svc, calls, id } = await setUp({ autoRelease: true, autoReleaseCheckEvery: '10m' }, compliant);
    await svc.sweepOnce();
    expect(calls.sort()).toEqual(['fixed.test', 'weak.test']);
    compliant.add('fixed.test');
    clock += 5 * 60_000;
    await svc.sweepOnce();
    expect(calls).toHaveLength(2);
    expect(copies.items.get(id('a@fixed.test'))!.state).toBe('stored');
    clock += 5 * 60_000;
    await svc.sweepOnce();
    expect(calls).toHaveLength(4);
    expect(copies.items.get(id('a@fixed.test'))!.state).toBe('released');
    expect(copies.items.get(id('c@weak.test'))!.state).toBe('stored');
  });

  test('a check that throws counts as not compliant and releases nothing', async () => {
    const { svc, calls } = await setUp({ autoRelease: true }, new Set(['fixed.test', 'weak.test']), new Set(['fixed.test', 'weak.test']));
    await svc.sweepOnce();
    expect(calls.sort()).toEqual(['fixed.test', 'weak.test']);
    expect((await copies.list()).map((i) => i.state)).toEqual(['stored', 'stored', 'stored']);
  });

  test('configured but without a compliance port: nothing happens', async () => {
    const svc = service({ autoRelease: true });
    await divert(['a@fixed.test']);
    await svc.handOverOnce();
    await svc.sweepOnce();
    expect((await copies.list()).map((i) => i.state)).toEqual(['stored']);
  });
});
