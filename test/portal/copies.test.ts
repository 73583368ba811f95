import { randomBytes } from 'node:crypto';
import { promises as fs, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { silentLogger } from '../../src/log/logger';
import { portalEventEvidence } from '../../src/evidence/recorder';
import { PortalCopies } from '../../src/portal/copies';
import { addKeyEncryptionKey, loadOrCreateKeyring, PortalKeyError, tokenHash, type Keyring } from '../../src/portal/crypto';
import { FileStore } from '../../src/store/file/file-store';
import { InvalidStateError, NotFoundError, type PortalSealedFacts } from '../../src/store/types';

const CANARY = 'CANARY-7f3e9b1c-Lab-Results';

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

function pieces(data: Buffer, size: number): Readable {
  const list: Buffer[] = [];
  for (let offset = 0; offset < data.length; offset += size) list.push(data.subarray(offset, offset + size));
  return Readable.from(list);
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(full)));
    else out.push(full);
  }
  return out;
}

describe('PortalCopies over the file store', () => {
  let dir: string;
  let spool: string;
  let keyFile: string;
  let store: FileStore;
  let keyring: Keyring;
  let copies: PortalCopies;
  let clock: number;
  let counter = 0;

  const message = Buffer.from(
    `From: Dr Who <dr@clinic.test>\r\nTo: pat@example.test\r\nSubject: ${CANARY} results\r\n\r\n` + `Body line ${CANARY}\r\n`.repeat(200) + 'binary: ' + randomBytes(3000).toString('latin1'),
    'latin1',
  );
  const facts: PortalSealedFacts = { recipient: 'pat@example.test', from: 'dr@clinic.test', subject: `${CANARY} results`, messageId: '<m1@clinic.test>' };

  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-copies-'));
    spool = path.join(dir, 'queue');
    keyFile = path.join(dir, 'keys', 'portal.json');
    store = new FileStore({ path: spool, keepFinished: 86_400_000, logger: silentLogger() });
    await store.open();
    keyring = await loadOrCreateKeyring(keyFile, silentLogger());
    clock = 1_800_000_000_000;
    // Small chunks, so a few KiB of message spans many of them.
    copies = new PortalCopies(store, keyring, () => clock, { chunkSize: 1000 });
  });

  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function create(body: Buffer = message, overrides: { fallbackId?: string } = {}) {
    const fallbackId = overrides.fallbackId ?? `01JQ${String(++counter).padStart(18, '0')}.${randomBytes(8).toString('hex')}`;
    return copies.create({
      fallbackId,
      queueId: fallbackId.split('.')[0]!,
      jobId: `${fallbackId.split('.')[0]!}/example.test`,
      facts,
      body: pieces(body, 777),
      expiresAt: clock + 30 * 86_400_000,
      auth: { methods: ['email-otp'] },
    });
  }

  test('create -> byToken -> openMessage returns the original bytes; facts unsealed; stored event recorded', async () => {
    const { item, token } = await create();
    expect(item).toMatchObject({ state: 'stored', size: message.length, chunkSize: 1000, createdAt: clock, version: 1, kid: keyring.currentKid, tokenHash: tokenHash(token) });
    expect(item.recipientHash).toBe(keyring.recipientHash('PAT@example.test'));
    const found = await copies.byToken(token);
    expect(found?.id).toBe(item.id);
    expect((await readAll(await copies.openMessage(found!))).equals(message)).toBe(true);
    expect(copies.facts(found!)).toEqual(facts);
    expect(await copies.byToken('unknown-token')).toBeUndefined();
    expect(await copies.byToken('')).toBeUndefined();
    const events = await copies.events(item.id);
    expect(events).toMatchObject([{ seq: 1, type: 'portal.stored', actor: 'relay', at: clock }]);
    expect((await copies.list()).map((i) => i.id)).toEqual([item.id]);
  });

  test('an empty message round-trips too', async () => {
    const { item } = await create(Buffer.alloc(0));
    expect(item.size).toBe(0);
    expect(await readAll(await copies.openMessage(item))).toHaveLength(0);
  });

  test('the same fallback id again replaces the copy and kills the first link', async () => {
    const first = await create();
    const second = await create(Buffer.from('replayed'), { fallbackId: first.item.id });
    expect(await copies.byToken(first.token)).toBeUndefined();
    const item = await copies.byToken(second.token);
    expect((await readAll(await copies.openMessage(item!))).toString()).toBe('replayed');
    expect(await copies.list()).toHaveLength(1);
    expect(await copies.verifyTrail(item!.id)).toEqual({ ok: true, events: 2 });
  });

  test('a failing body stores nothing', async () => {
    const body = new Readable({ read() {} });
    body.push(Buffer.alloc(5000, 1));
    setImmediate(() => body.destroy(new Error('queue body unreadable')));
    await expect(
      copies.create({ fallbackId: '01JQFAIL00000000000000.0123456789abcdef', queueId: 'q', jobId: 'q/x', facts, body, expiresAt: clock + 1000, auth: { methods: ['email-otp'] } }),
    ).rejects.toThrow();
    expect(await copies.list()).toEqual([]);
    expect(await copies.events('01JQFAIL00000000000000.0123456789abcdef')).toEqual([]);
  });

  test('newToken kills the old token', async () => {
    const { item, token } = await create();
    clock += 5_000;
    const renewed = await copies.newToken(item.id);
    expect(renewed.token).not.toBe(token);
    expect(renewed.item).toMatchObject({ version: 2, updatedAt: clock });
    expect(await copies.byToken(token)).toBeUndefined();
    expect((await copies.byToken(renewed.token))?.id).toBe(item.id);
  });

  test('update bumps the version and sets updatedAt', async () => {
    const { item } = await create();
    clock += 1_000;
    const updated = await copies.update(item.id, (i) => ({ ...i, state: 'notified', notifiedAt: clock }));
    expect(updated).toMatchObject({ state: 'notified', notifiedAt: clock, updatedAt: clock, version: 2 });
    expect(await copies.get(item.id)).toEqual(updated);
    await expect(copies.update('01JQNONE00000000000000.0123456789abcdef', (i) => i)).rejects.toBeInstanceOf(NotFoundError);
  });

  test('shred: openMessage and facts fail, the link only finds the final state, events remain, state set', async () => {
    const { item, token } = await create();
    await copies.record(item.id, { at: clock, type: 'notify.sent', actor: 'relay' });
    const shredded = await copies.shred(item.id, 'expired', { at: clock, type: 'message.expired', actor: 'relay' });
    expect(shredded).toMatchObject({ state: 'expired', kid: null, wrappedKey: null, sealed: null, tokenHash: item.tokenHash });
    expect(() => copies.facts(shredded)).toThrow(PortalKeyError);
    await expect(copies.openMessage(shredded)).rejects.toBeInstanceOf(PortalKeyError);
    // Even a copy of the record from before the shred finds no ciphertext any more.
    await expect(copies.openMessage(item)).rejects.toBeInstanceOf(NotFoundError);
    // The link still finds the item, so it can show "this message has expired"; there is nothing to read.
    expect(await copies.byToken(token)).toMatchObject({ id: item.id, state: 'expired', wrappedKey: null });
    expect((await copies.events(item.id)).map((e) => e.type)).toEqual(['portal.stored', 'notify.sent', 'message.expired']);
    expect(await copies.verifyTrail(item.id)).toEqual({ ok: true, events: 3 });
    await expect(copies.newToken(item.id)).rejects.toBeInstanceOf(InvalidStateError);
    expect((await fs.readdir(path.join(spool, 'portal', 'blobs'))).length).toBe(0);
  });

  test('with evidence, every trail entry is mirrored into the evidence log with its item’s keys, also across a shred; never the subject', async () => {
    const mirrored = new PortalCopies(store, keyring, () => clock, { chunkSize: 1000, evidence: portalEventEvidence(store) });
    const { item } = await mirrored.create({
      fallbackId: '01JQ000000000000000099.aa',
      queueId: '01JQ000000000000000099',
      jobId: '01JQ000000000000000099/example.test',
      facts,
      body: pieces(message, 777),
      expiresAt: clock + 86_400_000,
      auth: { methods: ['email-otp'] },
    });
    await mirrored.record(item.id, { at: clock + 1, type: 'link.opened', actor: 'recipient', ip: '127.0.0.9', uaHash: 'abcd' });
    await mirrored.shred(item.id, 'purged', { at: clock + 2, type: 'admin.purge', actor: 'cli:ops' });
    // After the shred the facts are gone: the queue id still ties an entry to its message.
    await mirrored.record(item.id, { at: clock + 3, type: 'link.opened', actor: 'recipient' });
    const logged = [];
    for await (const r of store.queryEvidence({ queueId: item.queueId })) logged.push(r);
    const trail = await mirrored.events(item.id);
    expect(logged.map((r) => r.data)).toEqual(trail.map((e) => ({ ...e })));
    expect(logged.slice(0, 3).map((r) => [r.kind, r.actor, r.queueId, r.recipient, r.sender, r.messageId])).toEqual([
      ['portal-event', 'relay', item.queueId, 'pat@example.test', 'dr@clinic.test', '<m1@clinic.test>'],
      ['portal-event', 'recipient', item.queueId, 'pat@example.test', 'dr@clinic.test', '<m1@clinic.test>'],
      ['portal-event', 'cli:ops', item.queueId, 'pat@example.test', 'dr@clinic.test', '<m1@clinic.test>'],
    ]);
    expect(logged[3]).toMatchObject({ kind: 'portal-event', queueId: item.queueId, recipient: null });
    expect(logged.map((r) => r.at)).toEqual([clock, clock + 1, clock + 2, clock + 3]);
    expect(JSON.stringify(logged)).not.toContain(CANARY);
    // Copies built without it (tests, tools) write the trail only.
    await copies.record(item.id, { at: clock + 4, type: 'link.opened', actor: 'recipient' });
    let after = 0;
    for await (const _r of store.queryEvidence({ queueId: item.queueId })) after++;
    expect(after).toBe(4);
  });

  test('with evidence, an entry the evidence log refuses fails the operation', async () => {
    const refusing = new PortalCopies(store, keyring, () => clock, { chunkSize: 1000, evidence: { recordPortalEvent: () => Promise.reject(new Error('disk full')) } });
    const { item } = await create();
    await expect(refusing.record(item.id, { at: clock, type: 'link.opened', actor: 'recipient' })).rejects.toThrow('disk full');
  });

  test('rewrapAll after addKeyEncryptionKey moves every live item to the new kid; content still decrypts', async () => {
    const a = await create();
    const b = await create(Buffer.from('second message'));
    const gone = await create();
    await copies.shred(gone.item.id, 'purged', { at: clock, type: 'admin.purge', actor: 'cli:root' });
    const oldKid = keyring.currentKid;
    const newKid = await addKeyEncryptionKey(keyFile);

    expect(await copies.rewrapAll({ at: clock, type: 'key.rotated', actor: 'cli:root' })).toBe(2);
    expect(keyring.currentKid).toBe(newKid);
    const items = await copies.list();
    expect(items.filter((i) => i.wrappedKey !== null).map((i) => i.kid)).toEqual([newKid, newKid]);
    expect(await copies.kidsInUse()).toEqual(new Set([newKid]));
    const [rewrappedA, rewrappedB] = [await copies.get(a.item.id), await copies.get(b.item.id)];
    expect(rewrappedA!.wrappedKey).not.toBe(a.item.wrappedKey);
    expect((await readAll(await copies.openMessage(rewrappedA!))).equals(message)).toBe(true);
    expect((await readAll(await copies.openMessage(rewrappedB!))).toString()).toBe('second message');
    expect(copies.facts(rewrappedB!)).toEqual(facts);
    expect((await copies.events(a.item.id)).at(-1)).toMatchObject({ type: 'key.rotated', detail: { from: oldKid, to: newKid } });
    // Nothing left to move.
    expect(await copies.rewrapAll()).toBe(0);
  });

  test('verifyTrail detects an edited event and names its seq', async () => {
    const { item } = await create();
    for (const type of ['notify.sent', 'link.opened', 'auth.success']) await copies.record(item.id, { at: clock, type, actor: 'recipient', ip: '192.0.2.7', uaHash: '0123456789abcdef' });
    expect(await copies.verifyTrail(item.id)).toEqual({ ok: true, events: 4 });

    const file = path.join(spool, 'portal', 'events', `${item.id}.jsonl`);
    const original = await fs.readFile(file, 'utf8');
    const lines = original.split('\n');
    expect(lines[2]).toContain('"link.opened"');
    lines[2] = lines[2]!.replace('192.0.2.7', '198.51.100.1');
    await fs.writeFile(file, lines.join('\n'));
    const broken = await copies.verifyTrail(item.id);
    expect(broken).toMatchObject({ ok: false, seq: 3 });
    expect(!broken.ok && broken.reason).toMatch(/changed/);

    // Removing an entry is caught where the gap is.
    const without = original.split('\n');
    without.splice(1, 1);
    await fs.writeFile(file, without.join('\n'));
    expect(await copies.verifyTrail(item.id)).toMatchObject({ ok: false, seq: 2 });

    // An entry edited into something that is not JSON is named too.
    const garbled = original.split('\n');
    garbled[3] = garbled[3]!.slice(0, 20);
    await fs.writeFile(file, garbled.join('\n'));
    expect(await copies.verifyTrail(item.id)).toMatchObject({ ok: false, seq: 4 });
  });

  test('nothing in the store files contains the plaintext (body, subject, recipient)', async () => {
    const { item } = await create();
    await copies.record(item.id, { at: clock, type: 'notify.sent', actor: 'relay' });
    await copies.newToken(item.id);
    await copies.update(item.id, (i) => ({ ...i, state: 'notified' }));
    await store.cacheSet('portal-session', 'abc', 'opaque', 60_000);
    const files = await filesUnder(spool);
    expect(files.some((f) => f.includes(`${path.sep}blobs${path.sep}`))).toBe(true);
    expect(files.some((f) => f.includes(`${path.sep}items${path.sep}`))).toBe(true);
    for (const file of files) {
      const content = await fs.readFile(file);
      expect({ file, canary: content.includes(CANARY) }).toEqual({ file, canary: false });
      expect({ file, recipient: content.includes('pat@example.test') }).toEqual({ file, recipient: false });
      expect({ file, body: content.includes('Body line') }).toEqual({ file, body: false });
    }
  });
});
