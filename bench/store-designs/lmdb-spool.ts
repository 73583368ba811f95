import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { open, type Database, type RootDatabase } from 'lmdb';
import { chainEvidence } from '../../src/store/evidence-chain';
import { newMessageId } from '../../src/store/ids';
import { newMessageRecord } from '../../src/store/records';
import type { ClaimedJob, EvidenceRecord, EvidenceRecordInput, HeaderFacts, JobRecord, JobResult, MessageRecord, NewMessage } from '../../src/store/types';
import type { HotPathStore } from './design';
import { PrototypeQueue, verifiedBody } from './prototype-queue';

/**
 * MEASUREMENT PROTOTYPE, not product code: the spool's hot-path writes in one LMDB environment through lmdb-js,
 * whose asynchronous puts issued in one event turn share one transaction, committed on lmdb-js's write thread.
 *
 *   meta      message id -> MessageRecord (JSON; its jobs inside, as the file store's meta file)
 *   bodies    [message id, chunk number] -> body bytes (chunked as they arrive: a 50 MB body is never held whole)
 *   evidence  seq -> EvidenceRecord, chained with src/store/evidence-chain.ts as both real stores do
 *
 * Durability: sync commits as lmdb-js defaults them (no noSync, no noMetaSync). On Linux lmdb-js defaults to
 * overlappingSync, where a put's promise resolves once the transaction is COMMITTED (visible) and the flush to
 * disk follows; so every write here also waits for the commit's `flushed` promise before it counts (the `250`).
 * With overlappingSync off, commit and flush are one step and the put promise alone is enough.
 *
 * Left out (a real store would need them): fallback items, portal, cache, admin queries, retention (removing
 * bodies and records), multi-recipient results racing on one message (a transaction with a version check),
 * reloading the evidence head after a failed commit, and the file store's quarantine of damaged entries.
 */

export interface LmdbSpoolOptions {
  path: string;
  /** lmdb-js's default on Linux is true: commit, then flush off the write lock. */
  overlappingSync?: boolean;
}

type Write = Promise<boolean> & { flushed?: Promise<boolean> };

export class LmdbSpool implements HotPathStore {
  private readonly queue = new PrototypeQueue();
  private head: { seq: number; hash: string } | undefined;

  private constructor(
    private readonly env: RootDatabase,
    private readonly meta: Database<MessageRecord, string>,
    private readonly bodies: Database<Buffer, [string, number]>,
    private readonly evidence: Database<EvidenceRecord, number>,
  ) {}

  /** Opens (or creates) the environment; the waiting jobs and the evidence head are read back from it. */
  static async open(options: LmdbSpoolOptions): Promise<LmdbSpool> {
    const overlappingSync = options.overlappingSync ?? true;
    const env = open({ path: options.path, overlappingSync, separateFlushed: overlappingSync, compression: false });
    const spool = new LmdbSpool(
      env,
      env.openDB<MessageRecord, string>({ name: 'meta', encoding: 'json' }),
      env.openDB<Buffer, [string, number]>({ name: 'bodies', encoding: 'binary' }),
      env.openDB<EvidenceRecord, number>({ name: 'evidence', encoding: 'json' }),
    );
    for (const { value } of spool.meta.getRange()) spool.queue.offer(value);
    for (const { value } of spool.evidence.getRange({ reverse: true, limit: 1 })) spool.head = { seq: value.seq, hash: value.hash };
    return spool;
  }

  /** Resolves once every write is on disk (see the class comment on overlappingSync). */
  private async durable(writes: Write[]): Promise<void> {
    await Promise.all(writes);
    await Promise.all(writes.map((w) => w.flushed ?? w));
  }

  async enqueue(message: NewMessage, body: Readable, headers: HeaderFacts): Promise<MessageRecord> {
    const id = newMessageId();
    const digest = createHash('sha256');
    const writes: Write[] = [];
    let size = 0;
    let chunk = 0;
    for await (const piece of body) {
      const bytes = piece as Buffer;
      digest.update(bytes);
      size += bytes.length;
      writes.push(this.bodies.put([id, chunk++], bytes));
    }
    const record = newMessageRecord(id, message, headers, size, digest.digest('hex'));
    writes.push(this.meta.put(id, record));
    await this.durable(writes);
    this.queue.offer(record);
    return record;
  }

  async claimOne(owner: string): Promise<ClaimedJob | undefined> {
    return this.queue.claim(owner, (id) => this.meta.get(id));
  }

  async openBody(id: string): Promise<Readable> {
    const record = this.meta.get(id);
    if (!record) throw new Error(`message ${id} not found`);
    const chunks = this.bodies.getRange({ start: [id, 0], end: [id, Number.MAX_SAFE_INTEGER] }).map(({ value }) => value);
    return verifiedBody(record, chunks);
  }

  async appendEvidence(inputs: readonly EvidenceRecordInput[]): Promise<EvidenceRecord[]> {
    // Chained synchronously, so concurrent appends take consecutive places; lmdb-js keeps their write order.
    const records = chainEvidence(this.head, inputs, Date.now());
    const last = records[records.length - 1];
    if (last) this.head = { seq: last.seq, hash: last.hash };
    await this.durable(records.map((r) => this.evidence.put(r.seq, r)));
    return records;
  }

  async completeJob(jobId: string, owner: string, result: JobResult): Promise<JobRecord> {
    const { record, job } = this.queue.complete(jobId, owner, result, (id) => this.meta.get(id));
    await this.durable([this.meta.put(record.id, record)]);
    this.queue.settled(jobId);
    return job;
  }

  getMessage(id: string): MessageRecord | undefined {
    return this.meta.get(id);
  }

  evidenceRecords(): EvidenceRecord[] {
    return [...this.evidence.getRange().map(({ value }) => value)];
  }

  get waiting(): number {
    return this.queue.waiting;
  }

  async close(): Promise<void> {
    await this.env.close();
  }
}
