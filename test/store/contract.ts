import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { newMessageId } from '../../src/store/ids';
import { GENESIS_HASH, verifyPortalChain } from '../../src/store/portal-chain';
import {
  EnqueueAbortedError,
  LeaseLostError,
  InvalidStateError,
  NotFoundError,
  StoreError,
  type Evidence,
  type NewMessage,
  type PortalEventInput,
  type PortalItem,
  type RecipientOutcome,
  type Store,
} from '../../src/store/types';

/**
 * The behaviour every Store backend must share. A backend's test file calls storeContract with a factory
 * that opens a fresh, empty store (and optionally a second client on the same data, for backends that
 * support several relay processes).
 */
export interface ContractBackend {
  open(options?: { keepFinished?: number; fallbackRetention?: number; quarantineRetention?: number }): Promise<Store>;
  /** A second store on the same data, as another relay process would have; undefined when not supported. */
  peer?(store: Store): Promise<Store>;
  /** Damages stored data by hand, as a disk fault or an operator's edit would. */
  damage: DamageHooks;
  dispose(): Promise<void>;
}

export interface DamageHooks {
  /** Cuts the stored body of message `id` to `bytes` bytes. */
  truncateBody(id: string, bytes: number): Promise<void>;
  /** Flips one byte of the stored body in place (same size). */
  flipBodyByte(id: string, offset: number): Promise<void>;
  /** Rewrites the stored message/job record through `change` (a damaged but valid JSON record). */
  editJob(jobId: string, change: (job: Record<string, unknown>) => void): Promise<void>;
  editMessage(id: string, change: (message: Record<string, unknown>) => void): Promise<void>;
  /** Replaces the job's (Redis) or message's (file) record with text that is not JSON. */
  garble(jobId: string): Promise<void>;
}

export function newMessage(addresses: string[], overrides: Partial<NewMessage> = {}): NewMessage {
  return {
    from: 'sender@clinic.test',
    recipients: addresses.map((address) => ({ address })),
    params: { bodyType: '8BITMIME' },
    client: { ip: '127.0.0.1', helo: 'client.test', user: 'alice', listener: 'submission', tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' } },
    receivedAt: Date.now(),
    ...overrides,
  };
}

/** A readable that hands `data` over in `chunkSize` pieces, as smtp-server would. */
export function chunked(data: Buffer, chunkSize = 64 * 1024): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (offset >= data.length) {
        this.push(null);
        return;
      }
      this.push(data.subarray(offset, offset + chunkSize));
      offset += chunkSize;
    },
  });
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(parts);
}

export function evidence(outcome: RecipientOutcome, reason: string, at = Date.now()): Evidence {
  return { at, outcome, reason, mx: 'mx.dest.test', ip: '127.0.0.9', reply: '250 ok', tls: { version: 'TLSv1.3' } };
}

/** Every byte value, in an order that is not plain ASCII text, with CRLF lines mixed in. */
function binaryBody(size: number): Buffer {
  const body = randomBytes(size);
  for (let i = 0; i < 256; i++) body[i] = i;
  body.write('\r\n.\r\nline after a dot\r\n', 300, 'latin1');
  return body;
}

/** A portal record as the portal would store it (opaque strings stand in for wrapped keys and sealed facts). */
export function portalItem(id: string, overrides: Partial<PortalItem> = {}): PortalItem {
  const now = Date.now();
  return {
    id,
    queueId: id.split('.')[0]!,
    jobId: `${id.split('.')[0]!}/dest.test`,
    recipientHash: 'a'.repeat(64),
    kid: 'kek-1',
    wrappedKey: randomBytes(60).toString('base64'),
    sealed: randomBytes(80).toString('base64'),
    tokenHash: randomBytes(32).toString('hex'),
    state: 'stored',
    size: 0,
    chunkSize: 65_536,
    auth: { methods: ['email-otp'] },
    createdAt: now,
    expiresAt: now + 30 * 86_400_000,
    updatedAt: now,
    version: 1,
    ...overrides,
  };
}

function portalEvent(type: string, overrides: Partial<PortalEventInput> = {}): PortalEventInput {
  return { at: Date.now(), type, actor: 'relay', ...overrides };
}

export function storeContract(name: string, backend: () => ContractBackend): void {
  describe(`${name} store contract`, () => {
    let harness: ContractBackend;
    let store: Store;

    beforeEach(async () => {
      harness = backend();
      store = await harness.open();
    });

    afterEach(async () => {
      await harness.dispose();
    });

    async function enqueue(addresses: string[], body: Buffer = Buffer.from('Subject: hi\r\n\r\nhello\r\n'), overrides: Partial<NewMessage> = {}) {
      return store.enqueue(newMessage(addresses, overrides), chunked(body), { messageId: '<m1@clinic.test>', from: 'Clinic <sender@clinic.test>' });
    }

    test('stores a multi-megabyte 8-bit body byte for byte and returns the record', async () => {
      const body = binaryBody(3 * 1024 * 1024 + 17);
      const record = await enqueue(['a@one.test', 'b@two.test'], body);
      expect(record.id).toMatch(/^[0-9A-Z]{22}$/);
      expect(record.size).toBe(body.length);
      const fetched = await store.getMessage(record.id);
      expect(fetched).toMatchObject({ id: record.id, from: 'sender@clinic.test', size: body.length, headers: { messageId: '<m1@clinic.test>' } });
      expect(fetched!.client.tls?.protocol).toBe('TLSv1.3');
      expect((await readAll(await store.openBody(record.id))).equals(body)).toBe(true);
    });

    test('keeps a notice marker in the message params through enqueue and claim', async () => {
      const record = await enqueue(['a@one.test'], undefined, { params: { notice: { itemId: 'item-1', kind: 'portal-link' } } });
      expect((await store.getMessage(record.id))!.params.notice).toEqual({ itemId: 'item-1', kind: 'portal-link' });
      expect((await store.claimDue('owner-n', 10, 60_000)).find((c) => c.message.id === record.id)?.message.params.notice).toEqual({ itemId: 'item-1', kind: 'portal-link' });
    });

    test('stores an empty body', async () => {
      const record = await enqueue(['a@one.test'], Buffer.alloc(0));
      expect(record.size).toBe(0);
      expect((await readAll(await store.openBody(record.id))).length).toBe(0);
    });

    test('enqueue under a given id twice (a retried write whose first try landed) stores one message and returns the first', async () => {
      const id = newMessageId();
      const body = Buffer.from('Subject: failure notice\r\n\r\nfirst try\r\n');
      const first = await store.enqueue(newMessage(['a@one.test', 'b@two.test']), chunked(body), { messageId: '<dsn1@relay.test>' }, { id });
      expect(first.id).toBe(id);
      // The retry builds its message again: other time, other header, other body. The first one stays.
      const again = await store.enqueue(
        newMessage(['a@one.test', 'b@two.test'], { receivedAt: first.receivedAt + 5_000 }),
        chunked(Buffer.from('Subject: failure notice\r\n\r\nsecond try, longer\r\n')),
        { messageId: '<dsn2@relay.test>' },
        { id },
      );
      expect(again).toEqual(first);
      expect((await store.listMessages()).map((m) => m.id)).toEqual([id]);
      expect(await store.getMessage(id)).toEqual(first);
      const counts = await store.counts();
      expect(counts.messages).toBe(1);
      expect(counts.jobs.queued).toBe(2);
      const claimed = await store.claimDue('w1', 10, 60_000);
      expect(claimed.map((c) => c.job.id).sort()).toEqual([`${id}/one.test`, `${id}/two.test`]);
      expect((await readAll(await store.openBody(id))).equals(body)).toBe(true);
      // Without a given id nothing changes: a new id each time.
      const other = await enqueue(['a@one.test']);
      expect(other.id).not.toBe(id);
      expect((await store.counts()).messages).toBe(2);
    });

    test('ids are unique and sort by arrival', async () => {
      const first = await enqueue(['a@one.test']);
      await new Promise((resolve) => setTimeout(resolve, 5));
      const second = await enqueue(['a@one.test']);
      expect(first.id < second.id).toBe(true);
    });

    test('splits recipients into one queued job per domain', async () => {
      const record = await enqueue(['a@one.test', 'b@two.test', 'c@one.test', 'd@Sub.Two.test']);
      expect(record.jobs.map((j) => j.domain)).toEqual(['one.test', 'two.test', 'sub.two.test']);
      const one = record.jobs[0]!;
      expect(one).toMatchObject({ id: `${record.id}/one.test`, messageId: record.id, state: 'queued', attempts: 0, dueAt: record.receivedAt });
      expect(one.recipients.map((r) => [r.address, r.state, r.history.length])).toEqual([
        ['a@one.test', 'pending', 0],
        ['c@one.test', 'pending', 0],
      ]);
    });

    test('a body stream that fails stores nothing', async () => {
      const body = new Readable({ read() {} });
      const pending = store.enqueue(newMessage(['a@one.test']), body);
      body.push(Buffer.alloc(200_000, 'x'));
      setImmediate(() => body.destroy(new Error('client went away')));
      await expect(pending).rejects.toBeInstanceOf(EnqueueAbortedError);
      expect(await store.listMessages()).toEqual([]);
      expect((await store.counts()).messages).toBe(0);
    });

    test('lists messages with filters, limit and offset', async () => {
      const old = await enqueue(['a@one.test'], undefined, { receivedAt: Date.now() - 3_600_000, from: 'old@clinic.test' });
      const mid = await enqueue(['b@two.test']);
      const last = await enqueue(['c@one.test', 'd@three.test'], undefined, { from: 'Other@Clinic.test' });
      await store.hold(mid.id);
      const ids = async (filter: Parameters<Store['listMessages']>[0]) => (await store.listMessages(filter)).map((m) => m.id);
      expect(await ids({})).toEqual([old.id, mid.id, last.id]);
      expect(await ids({ state: 'held' })).toEqual([mid.id]);
      expect(await ids({ domain: 'one.test' })).toEqual([old.id, last.id]);
      expect(await ids({ sender: 'other@clinic.test' })).toEqual([last.id]);
      expect(await ids({ olderThan: 60_000 })).toEqual([old.id]);
      expect(await ids({ limit: 2 })).toEqual([old.id, mid.id]);
      expect(await ids({ offset: 1, limit: 1 })).toEqual([mid.id]);
    });

    test('claims only due jobs and leases them', async () => {
      const now = Date.now();
      const due = await enqueue(['a@one.test']);
      await enqueue(['b@two.test'], undefined, { receivedAt: now + 600_000 });
      const claimed = await store.claimDue('w1', 10, 30_000, now + 1_000);
      expect(claimed.map((c) => c.job.id)).toEqual([`${due.id}/one.test`]);
      expect(claimed[0]!.job).toMatchObject({ state: 'leased', lease: { owner: 'w1', expiresAt: now + 31_000 } });
      expect(claimed[0]!.message).toMatchObject({ id: due.id, from: 'sender@clinic.test', size: due.size });
      expect(claimed[0]!.resumed).toBeUndefined();
      expect((await store.getMessage(due.id))!.jobs[0]!.state).toBe('leased');
      expect(await store.claimDue('w2', 10, 30_000, now + 1_000)).toEqual([]);
    });

    test('two concurrent claimers never get the same job', async () => {
      for (let i = 0; i < 20; i++) await enqueue([`r${i}@d${i % 4}.test`]);
      const other = harness.peer ? await harness.peer(store) : store;
      const results = await Promise.all([store.claimDue('w1', 15, 30_000), other.claimDue('w2', 15, 30_000), store.claimDue('w3', 15, 30_000)]);
      const ids = results.flat().map((c) => c.job.id);
      expect(ids).toHaveLength(20);
      expect(new Set(ids).size).toBe(20);
    });

    test('an expired lease makes the job claimable again and the first holder loses it', async () => {
      const record = await enqueue(['a@one.test']);
      const jobId = record.jobs[0]!.id;
      const now = Date.now();
      expect(await store.claimDue('w1', 1, 1_000, now)).toHaveLength(1);
      expect(await store.claimDue('w2', 1, 1_000, now + 500)).toHaveLength(0);
      const again = await store.claimDue('w2', 1, 60_000, now + 2_000);
      expect(again.map((c) => [c.job.lease?.owner, c.resumed])).toEqual([['w2', true]]);
      await expect(store.renewLease(jobId, 'w1', 1_000)).rejects.toBeInstanceOf(LeaseLostError);
      await expect(store.completeJob(jobId, 'w1', { recipients: [{ address: 'a@one.test', outcome: 'delivered', evidence: evidence('delivered', 'delivered') }] })).rejects.toBeInstanceOf(
        LeaseLostError,
      );
      expect((await store.getMessage(record.id))!.jobs[0]).toMatchObject({ state: 'leased', lease: { owner: 'w2' } });
    });

    test('renewLease extends only the holder’s lease; releaseLease makes the job due again', async () => {
      const record = await enqueue(['a@one.test']);
      const jobId = record.jobs[0]!.id;
      const now = Date.now();
      await store.claimDue('w1', 1, 1_000, now);
      await store.renewLease(jobId, 'w1', 600_000);
      expect((await store.getMessage(record.id))!.jobs[0]!.lease!.expiresAt).toBeGreaterThan(now + 60_000);
      await expect(store.renewLease(jobId, 'w2', 1_000)).rejects.toBeInstanceOf(LeaseLostError);
      await expect(store.releaseLease(jobId, 'w2')).rejects.toBeInstanceOf(LeaseLostError);
      await store.releaseLease(jobId, 'w1');
      const job = (await store.getMessage(record.id))!.jobs[0]!;
      expect(job.state).toBe('queued');
      expect(job.lease).toBeUndefined();
      expect((await store.claimDue('w2', 1, 1_000)).map((c) => c.job.id)).toEqual([jobId]);
    });

    test('completeJob with mixed outcomes: deferred keeps only pending recipients, then settles with diverted > bounced > delivered', async () => {
      const record = await enqueue(['ok@one.test', 'gone@one.test', 'weak@one.test', 'later@one.test']);
      const jobId = record.jobs[0]!.id;
      const start = Date.now();
      await store.claimDue('w1', 1, 60_000, start);
      const retryAt = start + 600_000;
      const first = await store.completeJob(jobId, 'w1', {
        recipients: [
          { address: 'ok@one.test', outcome: 'delivered', evidence: evidence('delivered', 'delivered') },
          { address: 'gone@one.test', outcome: 'bounced', evidence: evidence('bounced', 'rcpt-550') },
          { address: 'weak@one.test', outcome: 'diverted', evidence: evidence('diverted', 'tls-below-profile'), divertReason: 'no compliant MX' },
          { address: 'later@one.test', outcome: 'deferred', evidence: evidence('deferred', 'rcpt-451') },
        ],
        retryAt,
      });
      expect(first).toMatchObject({ state: 'deferred', dueAt: retryAt, attempts: 1, lastReason: 'rcpt-451' });
      expect(first.lease).toBeUndefined();
      expect(first.recipients.map((r) => [r.address, r.state, r.history.length])).toEqual([
        ['ok@one.test', 'delivered', 1],
        ['gone@one.test', 'bounced', 1],
        ['weak@one.test', 'diverted', 1],
        ['later@one.test', 'pending', 1],
      ]);
      expect((await store.getMessage(record.id))!.jobs[0]).toMatchObject({ state: 'deferred', dueAt: retryAt });
      expect(await store.claimDue('w1', 5, 60_000, retryAt - 1)).toEqual([]);

      const [item] = await store.listFallback();
      expect(item).toMatchObject({
        queueId: record.id,
        jobId,
        messageId: '<m1@clinic.test>',
        from: 'sender@clinic.test',
        recipient: 'weak@one.test',
        reason: 'no compliant MX',
        state: 'ready',
      });
      expect(item!.evidence.map((e) => e.reason)).toEqual(['tls-below-profile']);
      expect(item!.divertedAt).toBeGreaterThanOrEqual(start);

      const again = await store.claimDue('w2', 5, 60_000, retryAt + 1);
      expect(again.map((c) => c.job.recipients.filter((r) => r.state === 'pending').map((r) => r.address))).toEqual([['later@one.test']]);
      const last = await store.completeJob(jobId, 'w2', {
        recipients: [{ address: 'later@one.test', outcome: 'delivered', evidence: evidence('delivered', 'delivered') }],
      });
      expect(last).toMatchObject({ state: 'diverted', attempts: 2 });
      expect(last.recipients.find((r) => r.address === 'later@one.test')!.history.map((e) => e.outcome)).toEqual(['deferred', 'delivered']);
      await expect(store.completeJob(jobId, 'w2', { recipients: [] })).rejects.toBeInstanceOf(LeaseLostError);
    });

    test('the delay warning flag is stored with the recipient, kept by later attempts, and NOTIFY and ORCPT survive', async () => {
      const message = newMessage([], {
        recipients: [
          { address: 'slow@one.test', notify: ['DELAY', 'FAILURE'], orcpt: 'rfc822;Slow@one.test' },
          { address: 'quiet@one.test', notify: ['NEVER'] },
        ],
      });
      const record = await store.enqueue(message, chunked(Buffer.from('Subject: hi\r\n\r\nhello\r\n')));
      const jobId = record.jobs[0]!.id;
      const start = Date.now();
      await store.claimDue('w1', 1, 60_000, start);
      await store.completeJob(jobId, 'w1', {
        recipients: [
          { address: 'slow@one.test', outcome: 'deferred', evidence: evidence('deferred', 'rcpt-451'), delayWarnedAt: 1234 },
          { address: 'quiet@one.test', outcome: 'deferred', evidence: evidence('deferred', 'rcpt-451') },
        ],
        retryAt: start,
      });
      const [claimed] = await store.claimDue('w2', 1, 60_000, start + 1);
      expect(claimed!.job.recipients.map((r) => [r.address, r.delayWarnedAt, r.notify, r.orcpt])).toEqual([
        ['slow@one.test', 1234, ['DELAY', 'FAILURE'], 'rfc822;Slow@one.test'],
        ['quiet@one.test', undefined, ['NEVER'], undefined],
      ]);
      // Another worker's later attempt neither clears nor moves the flag.
      await store.completeJob(jobId, 'w2', {
        recipients: [
          { address: 'slow@one.test', outcome: 'deferred', evidence: evidence('deferred', 'rcpt-451') },
          { address: 'quiet@one.test', outcome: 'deferred', evidence: evidence('deferred', 'rcpt-451'), delayWarnedAt: 5678 },
        ],
        retryAt: start,
      });
      await store.claimDue('w3', 1, 60_000, start + 2);
      await store.completeJob(jobId, 'w3', { recipients: [{ address: 'slow@one.test', outcome: 'deferred', evidence: evidence('deferred', 'rcpt-451'), delayWarnedAt: 9999 }], retryAt: start });
      const stored = (await store.getMessage(record.id))!.jobs[0]!.recipients;
      expect(stored.map((r) => [r.address, r.delayWarnedAt])).toEqual([
        ['slow@one.test', 1234],
        ['quiet@one.test', 5678],
      ]);
    });

    test('final state precedence: bounced beats delivered; all delivered is delivered', async () => {
      const record = await enqueue(['a@one.test', 'b@one.test', 'c@two.test']);
      await store.claimDue('w1', 5, 60_000);
      const one = await store.completeJob(`${record.id}/one.test`, 'w1', {
        recipients: [
          { address: 'a@one.test', outcome: 'delivered', evidence: evidence('delivered', 'delivered') },
          { address: 'b@one.test', outcome: 'bounced', evidence: evidence('bounced', 'rcpt-550') },
        ],
      });
      const two = await store.completeJob(`${record.id}/two.test`, 'w1', {
        recipients: [{ address: 'c@two.test', outcome: 'delivered', evidence: evidence('delivered', 'delivered') }],
      });
      expect([one.state, two.state]).toEqual(['bounced', 'delivered']);
      expect(await store.listFallback()).toEqual([]);
    });

    async function divertOne(address = 'weak@one.test') {
      // Received long ago, so it is the first due job whatever else the test queued.
      const record = await enqueue([address], undefined, { receivedAt: Date.now() - 10 * 86_400_000 });
      const jobId = record.jobs[0]!.id;
      await store.claimDue('w1', 1, 60_000);
      await store.completeJob(jobId, 'w1', {
        recipients: [{ address, outcome: 'diverted', evidence: evidence('diverted', 'starttls-not-offered') }],
      });
      const items = await store.listFallback();
      return { record, jobId, item: items.find((i) => i.queueId === record.id)! };
    }

    test('fallback claims: unacked claims come back after their lease, only the holder can ack', async () => {
      const { item } = await divertOne();
      expect(item.reason).toBe('starttls-not-offered');
      const now = Date.now();
      const [claimed] = await store.claimFallback('p1', 5, 1_000, now);
      expect(claimed).toMatchObject({ id: item.id, state: 'claimed', claim: { owner: 'p1', expiresAt: now + 1_000 } });
      expect(await store.claimFallback('p2', 5, 1_000, now + 500)).toEqual([]);
      const [reclaimed] = await store.claimFallback('p2', 5, 60_000, now + 2_000);
      expect(reclaimed).toMatchObject({ id: item.id, claim: { owner: 'p2' } });
      await expect(store.ackFallback(item.id, 'p1')).rejects.toBeInstanceOf(LeaseLostError);
      await store.ackFallback(item.id, 'p2');
      const acked = await store.getFallback(item.id);
      expect(acked).toMatchObject({ state: 'acked' });
      expect(acked!.ackedAt).toBeGreaterThanOrEqual(now);
      expect(await store.claimFallback('p3', 5, 1_000, now + 600_000)).toEqual([]);
      expect(await store.listFallback({ state: 'acked' })).toHaveLength(1);
      expect(await store.listFallback({ state: 'ready' })).toHaveLength(0);
      await expect(store.ackFallback('01ARZ3NDEKTSV4RRFFQ69G5FAV.0123456789abcdef', 'p2')).rejects.toBeInstanceOf(NotFoundError);
    });

    test('releaseFallback puts the recipient back into delivery, due now, and drops the item', async () => {
      const { record, jobId, item } = await divertOne();
      await store.releaseFallback(item.id);
      expect(await store.getFallback(item.id)).toBeUndefined();
      const job = (await store.getMessage(record.id))!.jobs[0]!;
      expect(job.state).toBe('queued');
      expect(job.recipients[0]!.state).toBe('pending');
      const claimed = await store.claimDue('w2', 5, 60_000);
      expect(claimed.map((c) => c.job.id)).toEqual([jobId]);
      await expect(store.releaseFallback(item.id)).rejects.toBeInstanceOf(NotFoundError);
    });

    test('deleteFallback removes an item', async () => {
      const { item } = await divertOne();
      await store.deleteFallback(item.id);
      expect(await store.getFallback(item.id)).toBeUndefined();
      await expect(store.deleteFallback(item.id)).rejects.toBeInstanceOf(NotFoundError);
    });

    test('hold, release, retryNow and deleteMessage', async () => {
      const record = await enqueue(['a@one.test', 'b@two.test']);
      const held = await store.hold(record.id);
      expect(held.jobs.map((j) => j.state)).toEqual(['held', 'held']);
      expect(await store.claimDue('w1', 5, 60_000, Date.now() + 3_600_000)).toEqual([]);
      const released = await store.release(record.id);
      expect(released.jobs.map((j) => j.state)).toEqual(['queued', 'queued']);

      // Deferred, then held and released: back to deferred, still waiting for its retry time.
      await store.claimDue('w1', 1, 60_000);
      const later = Date.now() + 3_600_000;
      await store.completeJob(`${record.id}/one.test`, 'w1', {
        recipients: [{ address: 'a@one.test', outcome: 'deferred', evidence: evidence('deferred', 'connect-timeout') }],
        retryAt: later,
      });
      await store.hold(record.id);
      const back = await store.release(record.id);
      expect(back.jobs.map((j) => j.state).sort()).toEqual(['deferred', 'queued']);
      expect(back.jobs.find((j) => j.domain === 'one.test')!.dueAt).toBe(later);
      const now = Date.now();
      await store.claimDue('w1', 5, 60_000, now); // takes the queued one
      expect(await store.claimDue('w1', 5, 60_000, now)).toEqual([]);
      const retried = await store.retryNow(record.id);
      expect(retried.jobs.find((j) => j.domain === 'one.test')!.dueAt).toBeLessThanOrEqual(Date.now());
      expect((await store.claimDue('w2', 5, 60_000)).map((c) => c.job.domain)).toEqual(['one.test']);

      await store.deleteMessage(record.id);
      expect(await store.getMessage(record.id)).toBeUndefined();
      await expect(store.openBody(record.id)).rejects.toBeInstanceOf(NotFoundError);
      await expect(store.deleteMessage(record.id)).rejects.toBeInstanceOf(NotFoundError);
      await expect(store.hold(record.id)).rejects.toBeInstanceOf(NotFoundError);
      expect(await store.claimDue('w3', 5, 60_000, Date.now() + 86_400_000)).toEqual([]);
      expect((await store.counts()).messages).toBe(0);
    });

    test('a hold placed during a delivery attempt survives the attempt', async () => {
      const record = await enqueue(['a@one.test', 'b@one.test']);
      const jobId = record.jobs[0]!.id;
      await store.claimDue('w1', 1, 60_000);
      await store.hold(record.id);
      const job = await store.completeJob(jobId, 'w1', {
        recipients: [
          { address: 'a@one.test', outcome: 'delivered', evidence: evidence('delivered', 'delivered') },
          { address: 'b@one.test', outcome: 'deferred', evidence: evidence('deferred', 'rcpt-451') },
        ],
        retryAt: Date.now(),
      });
      expect(job).toMatchObject({ state: 'held', heldFrom: 'deferred' });
      expect(await store.claimDue('w1', 5, 60_000, Date.now() + 86_400_000)).toEqual([]);
      expect((await store.release(record.id)).jobs[0]!.state).toBe('deferred');
    });

    test('counts jobs, fallback items and messages by state', async () => {
      await enqueue(['a@one.test', 'b@two.test']);
      const heldMessage = await enqueue(['c@three.test']);
      await store.hold(heldMessage.id);
      await divertOne('x@four.test');
      const claimed = await store.claimDue('w1', 1, 60_000);
      expect(claimed).toHaveLength(1);
      const counts = await store.counts();
      expect(counts.messages).toBe(3);
      expect(counts.jobs).toEqual({ queued: 1, deferred: 0, held: 1, leased: 1, delivered: 0, diverted: 1, bounced: 0 });
      expect(counts.fallback).toEqual({ ready: 1, claimed: 0, acked: 0 });
    });

    test('waiting jobs: queued, deferred and leased by domain with the oldest arrival; held and final left out', async () => {
      expect(await store.waitingJobs()).toEqual({ total: 0, oldestArrival: null, byDomain: {} });
      const before = Date.now();
      const first = await enqueue(['a@one.test']);
      const firstStored = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 5));
      const secondStarted = Date.now();
      const second = await enqueue(['b@two.test', 'c@one.test']);
      const secondStored = Date.now();
      const held = await enqueue(['d@three.test']);
      await store.hold(held.id);
      await divertOne('x@four.test');
      const [leased] = await store.claimDue('w1', 1, 60_000);
      expect(leased?.job.id).toBe(`${first.id}/one.test`);
      const waiting = await store.waitingJobs();
      expect(waiting.byDomain).toEqual({ 'one.test': 2, 'two.test': 1 });
      expect(waiting.total).toBe(3);
      expect(waiting.oldestArrival).toBeGreaterThanOrEqual(before - 1);
      expect(waiting.oldestArrival).toBeLessThanOrEqual(firstStored);
      // The oldest job delivered: the oldest arrival is now the later message's.
      await store.completeJob(leased!.job.id, 'w1', { recipients: [{ address: 'a@one.test', outcome: 'delivered', evidence: evidence('delivered', 'delivered') }] });
      const after = await store.waitingJobs();
      expect(after.byDomain).toEqual({ 'one.test': 1, 'two.test': 1 });
      expect(after.oldestArrival).toBeGreaterThanOrEqual(secondStarted);
      expect(after.oldestArrival).toBeLessThanOrEqual(secondStored);
      await store.hold(second.id);
      expect(await store.waitingJobs()).toEqual({ total: 0, oldestArrival: null, byDomain: {} });
    });

    test('cache values expire and can be deleted', async () => {
      await store.cacheSet('mta-sts', 'one.test', 'policy-1', 60_000);
      await store.cacheSet('mta-sts', 'short.test', 'policy-2', 30);
      await store.cacheSet('other', 'one.test', 'different namespace', 60_000);
      expect(await store.cacheGet('mta-sts', 'one.test')).toBe('policy-1');
      expect(await store.cacheGet('other', 'one.test')).toBe('different namespace');
      expect(await store.cacheGet('mta-sts', 'missing.test')).toBeUndefined();
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await store.cacheGet('mta-sts', 'short.test')).toBeUndefined();
      await store.cacheSet('mta-sts', 'one.test', 'policy-3', 60_000);
      expect(await store.cacheGet('mta-sts', 'one.test')).toBe('policy-3');
      await store.cacheDelete('mta-sts', 'one.test');
      expect(await store.cacheGet('mta-sts', 'one.test')).toBeUndefined();
    });

    test('sweep drops bodies once nothing needs them and records after keepFinished, never a message in progress', async () => {
      await harness.dispose();
      harness = backend();
      store = await harness.open({ keepFinished: 60_000 });
      const done = await enqueue(['a@one.test']);
      const waiting = await enqueue(['b@two.test'], undefined, { receivedAt: Date.now() - 86_400_000 });
      const { record: diverted, item } = await divertOne('weak@three.test');
      const claimed = await store.claimDue('w1', 5, 60_000);
      const doneJob = claimed.find((c) => c.message.id === done.id)!;
      await store.completeJob(doneJob.job.id, 'w1', { recipients: [{ address: 'a@one.test', outcome: 'delivered', evidence: evidence('delivered', 'delivered') }] });
      const waitingJob = claimed.find((c) => c.message.id === waiting.id)!;
      await store.completeJob(waitingJob.job.id, 'w1', {
        recipients: [{ address: 'b@two.test', outcome: 'deferred', evidence: evidence('deferred', 'connect-timeout') }],
        retryAt: Date.now() + 86_400_000 * 30,
      });

      const now = Date.now();
      expect(await store.sweep(now)).toBe(0);
      expect((await store.getMessage(done.id))!.bodyRemoved).toBe(true);
      await expect(store.openBody(done.id)).rejects.toBeInstanceOf(NotFoundError);
      expect((await store.getMessage(diverted.id))!.bodyRemoved).toBeFalsy();
      expect((await readAll(await store.openBody(diverted.id))).length).toBeGreaterThan(0);

      const later = now + 120_000;
      expect(await store.sweep(later)).toBe(1);
      expect(await store.getMessage(done.id)).toBeUndefined();
      expect(await store.getMessage(diverted.id)).toBeDefined();
      expect(await store.getMessage(waiting.id)).toBeDefined();

      await store.claimFallback('p1', 1, 60_000);
      await store.ackFallback(item.id, 'p1');
      expect(await store.sweep(later)).toBe(1);
      expect(await store.getMessage(diverted.id)).toBeUndefined();
      expect(await store.getFallback(item.id)).toBeUndefined();
      expect(await store.sweep(now + 86_400_000 * 365)).toBe(0);
      expect(await readAll(await store.openBody(waiting.id))).toBeDefined();
    });

    test('a diverted body nobody acknowledged is kept only until the fallback retention runs out', async () => {
      await harness.dispose();
      harness = backend();
      store = await harness.open({ keepFinished: 60_000, fallbackRetention: 3_600_000 });
      const { record, item } = await divertOne('weak@three.test');
      const now = Date.now();
      expect(await store.sweep(now + 120_000)).toBe(0);
      expect((await readAll(await store.openBody(record.id))).length).toBeGreaterThan(0);
      expect((await store.getFallback(item.id))?.state).toBe('ready');

      expect(await store.sweep(now + 3_600_000 + 1_000)).toBe(1);
      expect(await store.getMessage(record.id)).toBeUndefined();
      await expect(store.openBody(record.id)).rejects.toBeInstanceOf(NotFoundError);
    });

    /** Resolves to the StoreError a promise rejects with, or fails the test when it rejects with anything else. */
    async function storeErrorOf(pending: Promise<unknown>): Promise<StoreError> {
      const error = await pending.then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(StoreError);
      return error as StoreError;
    }

    test('typed errors: every action on an id the store does not hold fails with code not-found', async () => {
      const messageId = '01ARZ3NDEKTSV4RRFFQ69G5FAV';
      const itemId = `${messageId}.0123456789abcdef`;
      const attempts: Array<[string, () => Promise<unknown>]> = [
        ['hold', () => store.hold(messageId)],
        ['release', () => store.release(messageId)],
        ['retryNow', () => store.retryNow(messageId)],
        ['deleteMessage', () => store.deleteMessage(messageId)],
        ['openBody', () => store.openBody(messageId)],
        ['releaseFallback', () => store.releaseFallback(itemId)],
        ['deleteFallback', () => store.deleteFallback(itemId)],
        ['ackFallback', () => store.ackFallback(itemId, 'p1')],
        ['hold (malformed id)', () => store.hold('not an id')],
        ['releaseFallback (malformed id)', () => store.releaseFallback('nope')],
      ];
      for (const [name, act] of attempts) {
        const error = await storeErrorOf(act());
        expect({ name, code: error.code }).toEqual({ name, code: 'not-found' });
        expect(error).toBeInstanceOf(NotFoundError);
      }
    });

    test('typed errors: a handed-over item cannot be released (code handed-over), and stays handed over', async () => {
      const { record, item } = await divertOne('gone@one.test');
      await store.claimFallback('p1', 5, 60_000);
      await store.ackFallback(item.id, 'p1');
      const error = await storeErrorOf(store.releaseFallback(item.id));
      expect(error.code).toBe('handed-over');
      expect(error).toBeInstanceOf(InvalidStateError);
      expect(await store.getFallback(item.id)).toMatchObject({ state: 'acked' });
      expect((await store.getMessage(record.id))!.jobs[0]!.recipients[0]!.state).toBe('diverted');
    });

    test('typed errors: leases and claims not held by the caller fail with code lease-lost', async () => {
      const record = await enqueue(['a@one.test'], undefined, { receivedAt: Date.now() - 10 * 86_400_000 });
      const jobId = record.jobs[0]!.id;
      await store.claimDue('w1', 1, 60_000);
      for (const act of [
        () => store.renewLease(jobId, 'w2', 60_000),
        () => store.releaseLease(jobId, 'w2'),
        () => store.completeJob(jobId, 'w2', { recipients: [{ address: 'a@one.test', outcome: 'delivered', evidence: evidence('delivered', 'delivered') }] }),
      ]) {
        const error = await storeErrorOf(act());
        expect(error.code).toBe('lease-lost');
        expect(error).toBeInstanceOf(LeaseLostError);
      }
      const { item } = await divertOne('weak@two.test');
      await store.claimFallback('p1', 5, 60_000);
      expect((await storeErrorOf(store.ackFallback(item.id, 'p2'))).code).toBe('lease-lost');
    });

    test('typed errors: an aborted body is code enqueue-aborted', async () => {
      const body = new Readable({ read() {} });
      const pending = store.enqueue(newMessage(['a@one.test']), body);
      setImmediate(() => body.destroy(new Error('client went away')));
      expect((await storeErrorOf(pending)).code).toBe('enqueue-aborted');
    });
    describe('portal copies', () => {
      let counter = 0;
      const newId = () => `01PORTAL${String(++counter).padStart(14, '0')}.${randomBytes(8).toString('hex')}`;

      async function put(item: PortalItem, data: Buffer = randomBytes(1000)) {
        await store.putPortalCopy(item, chunked(data, 7_000));
        return data;
      }

      test('put, get, list oldest first with filters and paging, ciphertext byte for byte', async () => {
        const base = Date.now();
        const a = portalItem(newId(), { createdAt: base - 3_000, expiresAt: base + 1_000 });
        const b = portalItem(newId(), { createdAt: base - 2_000, expiresAt: base + 5_000, state: 'notified' });
        const c = portalItem(newId(), { createdAt: base - 1_000, expiresAt: base + 9_000, state: 'notified' });
        const big = binaryBody(700 * 1024 + 3);
        await put(c);
        await put(a, big);
        await put(b, Buffer.alloc(0));
        expect(await store.getPortalItem(a.id)).toEqual(a);
        expect(await store.getPortalItem(newId())).toBeUndefined();
        expect(await store.getPortalItem('../../etc/passwd')).toBeUndefined();
        expect((await store.listPortalItems()).map((i) => i.id)).toEqual([a.id, b.id, c.id]);
        expect((await store.listPortalItems({ state: 'notified' })).map((i) => i.id)).toEqual([b.id, c.id]);
        expect((await store.listPortalItems({ expiresBefore: base + 5_000 })).map((i) => i.id)).toEqual([a.id, b.id]);
        expect((await store.listPortalItems({ offset: 1, limit: 1 })).map((i) => i.id)).toEqual([b.id]);
        expect((await readAll(await store.openPortalCiphertext(a.id))).equals(big)).toBe(true);
        expect(await readAll(await store.openPortalCiphertext(b.id))).toHaveLength(0);
        await expect(store.openPortalCiphertext(newId())).rejects.toBeInstanceOf(NotFoundError);
      });

      test('the record is stored as it is when the stream ends; the same id again replaces copy and token', async () => {
        const item = portalItem(newId(), { size: 0 });
        const source = chunked(Buffer.from('first copy'), 3);
        source.on('end', () => (item.size = 10));
        await store.putPortalCopy(item, source);
        expect((await store.getPortalItem(item.id))?.size).toBe(10);

        const oldToken = item.tokenHash!;
        const replaced = portalItem(item.id, { size: 11 });
        await put(replaced, Buffer.from('second copy'));
        expect(await store.getPortalItem(item.id)).toEqual(replaced);
        expect((await readAll(await store.openPortalCiphertext(item.id))).toString()).toBe('second copy');
        expect(await store.findPortalItemByToken(oldToken)).toBeUndefined();
        expect((await store.findPortalItemByToken(replaced.tokenHash!))?.id).toBe(item.id);
        expect(await store.listPortalItems()).toHaveLength(1);
      });

      test('putPortalCopy with a failing stream stores no record and no ciphertext', async () => {
        const item = portalItem(newId());
        const source = new Readable({ read() {} });
        source.push(randomBytes(5000));
        const pending = store.putPortalCopy(item, source);
        setImmediate(() => source.destroy(new Error('encryption failed')));
        const error = await storeErrorOf(pending);
        expect(error).toBeInstanceOf(EnqueueAbortedError);
        expect(await store.getPortalItem(item.id)).toBeUndefined();
        expect(await store.findPortalItemByToken(item.tokenHash!)).toBeUndefined();
        await expect(store.openPortalCiphertext(item.id)).rejects.toBeInstanceOf(NotFoundError);
        expect(await store.listPortalItems()).toEqual([]);
      });

      test('token lookup follows updates: the old token is no longer found', async () => {
        const item = portalItem(newId());
        await put(item);
        const first = item.tokenHash!;
        expect((await store.findPortalItemByToken(first))?.id).toBe(item.id);
        const second = randomBytes(32).toString('hex');
        const updated = await store.updatePortalItem(item.id, (i) => ({ ...i, tokenHash: second }));
        expect(updated.tokenHash).toBe(second);
        expect(await store.findPortalItemByToken(first)).toBeUndefined();
        expect((await store.findPortalItemByToken(second))?.id).toBe(item.id);
        // Another change that keeps the token keeps it findable.
        await store.updatePortalItem(item.id, (i) => ({ ...i, state: 'opened' }));
        expect(await store.findPortalItemByToken(second)).toMatchObject({ id: item.id, state: 'opened' });
        await store.updatePortalItem(item.id, (i) => ({ ...i, tokenHash: null }));
        expect(await store.findPortalItemByToken(second)).toBeUndefined();
        expect(await store.findPortalItemByToken('not a hash')).toBeUndefined();
      });

      test('update bumps the version; concurrent updates all apply (no lost update), also from another process', async () => {
        const item = portalItem(newId(), { size: 0, version: 1 });
        await put(item);
        const peer = harness.peer ? await harness.peer(store) : store;
        const updates = Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? store : peer).updatePortalItem(item.id, (current) => ({ ...current, size: current.size + 1 })));
        const results = await Promise.all(updates);
        expect(results.map((r) => r.version).sort((x, y) => x - y)).toEqual(Array.from({ length: 12 }, (_, i) => i + 2));
        expect(await store.getPortalItem(item.id)).toMatchObject({ size: 12, version: 13 });
        await expect(store.updatePortalItem(newId(), (i) => i)).rejects.toBeInstanceOf(NotFoundError);
      });

      test('shred removes ciphertext, wrapped key and sealed facts, keeps the record, the link token hash and the trail', async () => {
        const item = portalItem(newId(), { state: 'expired' });
        await put(item);
        await store.appendPortalEvent(item.id, portalEvent('portal.stored'));
        await store.shredPortalCopy(item.id);
        const shredded = await store.getPortalItem(item.id);
        expect(shredded).toMatchObject({ id: item.id, state: 'expired', kid: null, wrappedKey: null, sealed: null, tokenHash: item.tokenHash, createdAt: item.createdAt, expiresAt: item.expiresAt });
        await expect(store.openPortalCiphertext(item.id)).rejects.toBeInstanceOf(NotFoundError);
        // The link still finds the (shredded) record, so it can show the final state's page.
        expect(await store.findPortalItemByToken(item.tokenHash!)).toMatchObject({ id: item.id, state: 'expired', wrappedKey: null });
        expect(await store.portalEvents(item.id)).toHaveLength(1);
        // Idempotent.
        await store.shredPortalCopy(item.id);
        expect((await store.getPortalItem(item.id))?.version).toBe(shredded!.version);
      });

      test('appendPortalEvent chains correctly under 20 concurrent appends from two processes', async () => {
        const item = portalItem(newId());
        await put(item);
        const peer = harness.peer ? await harness.peer(store) : store;
        const appended = await Promise.all(
          Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? store : peer).appendPortalEvent(item.id, portalEvent('link.opened', { ip: '192.0.2.1', uaHash: 'abcd', detail: { n: i } }))),
        );
        expect(appended.map((e) => e.seq).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
        const events = await store.portalEvents(item.id);
        expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
        expect(events[0]!.prevHash).toBe(GENESIS_HASH);
        expect(events.every((e) => e.itemId === item.id && /^[0-9a-f]{64}$/.test(e.hash))).toBe(true);
        expect(verifyPortalChain(item.id, events)).toEqual({ ok: true, events: 20 });
        expect(events.map((e) => e.detail?.n).sort((x, y) => Number(x) - Number(y))).toEqual(Array.from({ length: 20 }, (_, i) => i));
        expect(await store.portalEvents(newId())).toEqual([]);
      });

      test('a changed event breaks the chain at that entry', async () => {
        const item = portalItem(newId());
        await put(item);
        for (const type of ['portal.stored', 'notify.sent', 'link.opened']) await store.appendPortalEvent(item.id, portalEvent(type));
        const events = await store.portalEvents(item.id);
        const edited = events.map((e) => (e.seq === 2 ? { ...e, actor: 'someone else' } : e));
        expect(verifyPortalChain(item.id, edited)).toMatchObject({ ok: false, seq: 2 });
        expect(verifyPortalChain(item.id, [events[0]!, events[2]!])).toMatchObject({ ok: false, seq: 2 });
      });

      test('deleting a message and the retention sweep leave portal copies alone', async () => {
        await harness.dispose();
        harness = backend();
        store = await harness.open({ keepFinished: 60_000 });
        const first = await divertOne('weak@one.test');
        const copy = portalItem(first.item.id, { queueId: first.record.id, jobId: first.jobId });
        const data = await put(copy);
        await store.appendPortalEvent(copy.id, portalEvent('portal.stored'));
        await store.deleteMessage(first.record.id);
        // The diverted outcome stays as evidence only (no body, no fallback item) until retention.
        expect(await store.getMessage(first.record.id)).toMatchObject({ deletedAt: expect.any(Number), bodyRemoved: true });
        expect(await store.listFallback()).toEqual([]);
        expect(await store.getPortalItem(copy.id)).toEqual(copy);
        expect((await readAll(await store.openPortalCiphertext(copy.id))).equals(data)).toBe(true);

        const second = await divertOne('weak@two.test');
        const other = portalItem(second.item.id, { queueId: second.record.id, jobId: second.jobId });
        await put(other);
        await store.claimFallback('p1', 5, 60_000);
        await store.ackFallback(second.item.id, 'p1');
        expect(await store.sweep(Date.now() + 86_400_000)).toBe(2);
        expect(await store.getMessage(first.record.id)).toBeUndefined();
        expect(await store.getMessage(second.record.id)).toBeUndefined();
        expect(await store.getPortalItem(other.id)).toEqual(other);
        expect(await readAll(await store.openPortalCiphertext(other.id))).toHaveLength(1000);
        expect(await store.portalEvents(copy.id)).toHaveLength(1);
        expect((await store.findPortalItemByToken(other.tokenHash!))?.id).toBe(other.id);
      });
    });

    test('cacheIncrement is atomic under concurrency (also across processes) and expires', async () => {
      const peer = harness.peer ? await harness.peer(store) : store;
      const values = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? store : peer).cacheIncrement('portal-otp', 'attempts', 60_000)));
      expect(values.sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      expect(await store.cacheGet('portal-otp', 'attempts')).toBe('20');
      // Another key and namespace are separate counters.
      expect(await store.cacheIncrement('portal-otp', 'other', 60_000)).toBe(1);
      expect(await store.cacheIncrement('portal-x', 'attempts', 60_000)).toBe(1);

      expect(await store.cacheIncrement('portal-otp', 'short', 250)).toBe(1);
      // Incrementing keeps the first expiry: the counter is a window, not a sliding timeout.
      await new Promise((resolve) => setTimeout(resolve, 150));
      expect(await store.cacheIncrement('portal-otp', 'short', 250)).toBe(2);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await store.cacheGet('portal-otp', 'short')).toBeUndefined();
      expect(await store.cacheIncrement('portal-otp', 'short', 250)).toBe(1);
    });

    describe('damaged entries', () => {
      const body = Buffer.from('Subject: hi\r\n\r\nhello, this is the whole body\r\n');

      test('keeps the size and SHA-256 of the body at enqueue', async () => {
        const record = await enqueue(['a@one.test'], body);
        expect(record.sha256).toBe(createHash('sha256').update(body).digest('hex'));
        expect((await store.getMessage(record.id))!.sha256).toBe(record.sha256);
        expect((await store.claimDue('w', 10, 60_000))[0]!.message.sha256).toBe(record.sha256);
      });

      test('quarantineMessage sets a message aside once: not listed, not claimed, counted, listed as quarantined, purged', async () => {
        const bad = await enqueue(['a@one.test', 'b@two.test'], body);
        const good = await enqueue(['c@three.test'], body);
        await store.quarantineMessage(bad.id, 'result', 'result could not be recorded: boom', `${bad.id}/one.test`);
        await store.quarantineMessage(bad.id, 'result', 'again');
        expect((await store.listMessages()).map((m) => m.id)).toEqual([good.id]);
        expect(await store.getMessage(bad.id)).toBeUndefined();
        expect((await store.claimDue('w', 10, 60_000)).map((c) => c.message.id)).toEqual([good.id]);
        const quarantined = await store.listQuarantined();
        expect(quarantined).toEqual([expect.objectContaining({ id: bad.id, kind: 'result', code: 'result-unrecorded', reason: 'result could not be recorded: boom', jobId: `${bad.id}/one.test` })]);
        expect((await store.counts()).quarantined).toBe(1);
        expect((await store.counts()).jobs.queued).toBe(0);
        expect(await store.purgeQuarantined(quarantined[0]!.at)).toEqual([]);
        expect((await store.purgeQuarantined(Date.now() + 1)).map((e) => e.id)).toEqual([bad.id]);
        expect(await store.listQuarantined()).toEqual([]);
        expect((await store.counts()).quarantined).toBe(0);
      });

      test('the sweep deletes quarantined entries once queue.quarantineRetention has passed, not before', async () => {
        const kept = await harness.open({ quarantineRetention: 60_000 });
        const record = await enqueue(['a@one.test'], body);
        await kept.quarantineMessage(record.id, 'body', 'body has 3 of the 20 bytes stored at enqueue');
        const at = (await kept.listQuarantined())[0]!.at;
        await kept.sweep(at + 59_000);
        expect((await kept.listQuarantined()).map((e) => e.id)).toEqual([record.id]);
        await kept.sweep(at + 61_000);
        expect(await kept.listQuarantined()).toEqual([]);
        expect((await kept.counts()).quarantined).toBe(0);
      });

      test('a job record missing its recipients is quarantined at claim; the other messages are claimed', async () => {
        const bad = await enqueue(['a@one.test'], body);
        const good = await enqueue(['b@two.test'], body);
        await harness.damage.editJob(`${bad.id}/one.test`, (job) => delete job.recipients);
        const claimed = await store.claimDue('w', 10, 60_000);
        expect(claimed.map((c) => c.message.id)).toEqual([good.id]);
        expect(await store.listQuarantined()).toEqual([expect.objectContaining({ id: bad.id, code: 'invalid-record' })]);
        expect((await store.listQuarantined())[0]!.reason).toMatch(/recipients/);
        expect(await store.claimDue('w', 10, 60_000)).toEqual([]);
      });

      test('a message record missing a field never reaches delivery and never blocks listing', async () => {
        const bad = await enqueue(['a@one.test'], body);
        const good = await enqueue(['b@two.test'], body);
        await harness.damage.editMessage(bad.id, (message) => delete message.size);
        expect((await store.listMessages()).map((m) => m.id)).toEqual([good.id]);
        expect((await store.claimDue('w', 10, 60_000)).map((c) => c.message.id)).toEqual([good.id]);
        expect((await store.listQuarantined()).map((e) => [e.id, e.code])).toEqual([[bad.id, 'invalid-record']]);
      });

      test('an unparsable record is quarantined as not valid JSON; claims and listings go on', async () => {
        const bad = await enqueue(['a@one.test'], body);
        const good = await Promise.all([enqueue(['b@two.test'], body), enqueue(['c@three.test'], body)]);
        await harness.damage.garble(`${bad.id}/one.test`);
        expect((await store.listMessages()).map((m) => m.id).sort()).toEqual(good.map((g) => g.id).sort());
        expect((await store.claimDue('w', 10, 60_000)).map((c) => c.message.id).sort()).toEqual(good.map((g) => g.id).sort());
        const entries = await store.listQuarantined();
        expect(entries.map((e) => [e.id, e.code])).toEqual([[bad.id, 'invalid-json']]);
      });

      test('a result for a job damaged after its claim is refused with code damaged, and the message quarantined', async () => {
        const record = await enqueue(['a@one.test'], body);
        const [claimed] = await store.claimDue('w', 10, 60_000);
        await harness.damage.editJob(claimed!.job.id, (job) => delete job.recipients);
        const failure = await store
          .completeJob(claimed!.job.id, 'w', { recipients: [{ address: 'a@one.test', outcome: 'delivered', evidence: evidence('delivered', 'delivered') }] })
          .catch((error: unknown) => error);
        expect((failure as StoreError).code).toBe('damaged');
        expect((await store.listQuarantined()).map((e) => e.id)).toEqual([record.id]);
        expect(await store.claimDue('w', 10, 60_000, Date.now() + 120_000)).toEqual([]);
      });

      test('a truncated body is refused (code damaged) and its message quarantined', async () => {
        const record = await enqueue(['a@one.test'], body);
        await harness.damage.truncateBody(record.id, 10);
        const failure = await store.openBody(record.id).catch((error: unknown) => error);
        expect(failure).toBeInstanceOf(StoreError);
        expect((failure as StoreError).code).toBe('damaged');
        expect((await store.listQuarantined()).map((e) => [e.id, e.kind, e.code])).toEqual([[record.id, 'body', 'body-size']]);
        expect(await store.claimDue('w', 10, 60_000)).toEqual([]);
      });

      test('a body changed after enqueue fails its stream before the end (no second read) and is quarantined', async () => {
        const big = randomBytes(3 * 256 * 1024 + 5);
        const record = await enqueue(['a@one.test'], big);
        await harness.damage.flipBodyByte(record.id, big.length - 3);
        const stream = await store.openBody(record.id);
        let ended = false;
        stream.on('end', () => (ended = true));
        const failure = await readAll(stream).catch((error: unknown) => error);
        expect((failure as StoreError).code).toBe('damaged');
        expect(ended).toBe(false);
        expect((await store.listQuarantined()).map((e) => [e.id, e.code])).toEqual([[record.id, 'body-checksum']]);
      });

      test('a record written before checksums (no sha256) still delivers, size-checked only', async () => {
        const record = await enqueue(['a@one.test'], body);
        await harness.damage.editMessage(record.id, (message) => delete message.sha256);
        expect((await readAll(await store.openBody(record.id))).equals(body)).toBe(true);
        await harness.damage.truncateBody(record.id, 5);
        expect(((await store.openBody(record.id).catch((error: unknown) => error)) as StoreError).code).toBe('damaged');
      });
    });
  });
}

/** The Redis commands the key-damage hooks use: a single client and a cluster client both have them. */
interface DamageClient {
  get(key: string): Promise<string | null>;
  set(key: string, value: string | Buffer): Promise<unknown>;
  getBuffer(key: string): Promise<Buffer | null>;
  getrangeBuffer(key: string, start: number, end: number): Promise<Buffer>;
  setrange(key: string, offset: number, value: Buffer): Promise<unknown>;
  disconnect(): void;
}

/** Hand-damage of a Redis store's keys (under the names the store uses), as redis-cli would leave them. */
export function redisKeyDamage(keys: { body(id: string): string; message(id: string): string; job(jobId: string): string }, connect: () => DamageClient): DamageHooks {
  const withClient = async (task: (c: DamageClient) => Promise<unknown>) => {
    const c = connect();
    try {
      await task(c);
    } finally {
      c.disconnect();
    }
  };
  const edit = (key: string, change: (record: Record<string, unknown>) => void) =>
    withClient(async (c) => {
      const record = JSON.parse((await c.get(key))!) as Record<string, unknown>;
      change(record);
      await c.set(key, JSON.stringify(record));
    });
  return {
    truncateBody: (id, bytes) => withClient(async (c) => c.set(keys.body(id), (await c.getBuffer(keys.body(id)))!.subarray(0, bytes))),
    flipBodyByte: (id, offset) =>
      withClient(async (c) => {
        const byte = (await c.getrangeBuffer(keys.body(id), offset, offset))[0]!;
        await c.setrange(keys.body(id), offset, Buffer.from([byte ^ 0xff]));
      }),
    editMessage: (id, change) => edit(keys.message(id), change),
    editJob: (jobId, change) => edit(keys.job(jobId), change),
    garble: (jobId) => withClient((c) => c.set(keys.job(jobId), '{"id": "truncated')),
  };
}
