import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { BodyVerifier } from '../body-check';
import { KeyedMutex } from '../file/locks';
import { isMessageId, jobOf, newMessageId, parseJobId } from '../ids';
import { applyJobResult, isClaimable, newMessageRecord, withLease } from '../records';
import type { JobQueue } from '../roles';
import {
  DamagedEntryError,
  EnqueueAbortedError,
  LeaseLostError,
  NotFoundError,
  type ClaimedJob,
  type EnqueueOptions,
  type FallbackItem,
  type HeaderFacts,
  type JobRecord,
  type JobResult,
  type MessageRecord,
  type NewMessage,
} from '../types';
import { encode } from './codec';
import { LmdbInflight } from './inflight';
import { chunkRange } from './quarantine';
import type { LmdbSpool } from './spool';

/** Every body chunk holds this many bytes, except the last: openBody knows from the size how many there are. */
export const BODY_CHUNK = 256 * 1024;
/**
 * Most bytes of chunk puts left uncommitted before reading more of the body: the stream waits for the commit, so
 * a large body is never held in memory whole (lmdb-js keeps what a put was given until it commits).
 */
export const UNCOMMITTED_LIMIT = 4 * 1024 * 1024;

/** How many chunks a body of `size` bytes is stored in. */
export function chunkCount(size: number): number {
  return Math.ceil(size / BODY_CHUNK);
}

/** The job queue over LMDB: chunked enqueue with backpressure, in-memory leases checked in the transaction, results. */
export class LmdbJobQueue implements JobQueue {
  private inflight: LmdbInflight | undefined;
  /** Enqueues under a caller's id, one at a time per id, so a retry never writes chunks under a stored message. */
  private readonly chosen = new KeyedMutex();

  constructor(private readonly spool: LmdbSpool) {}

  /** The in-flight markers, over the environment the spool opened. */
  private get markers(): LmdbInflight {
    this.inflight ??= new LmdbInflight(this.spool.env);
    return this.inflight;
  }

  async enqueue(message: NewMessage, body: Readable, headers: HeaderFacts = {}, options: EnqueueOptions = {}): Promise<MessageRecord> {
    const chosen = options.id;
    if (chosen === undefined) return this.store(newMessageId(), message, body, headers);
    if (!isMessageId(chosen)) throw new RangeError(`enqueue: ${JSON.stringify(chosen)} is not a message id`);
    return this.chosen.run(chosen, async () => {
      // Looked up before any chunk is written: a second write of the same id returns the first and drops this body.
      const existing = await this.spool.readMessage(chosen);
      if (!existing) return this.store(chosen, message, body, headers);
      body.destroy();
      return this.spool.index.view(existing);
    });
  }

  private async store(id: string, message: NewMessage, body: Readable, headers: HeaderFacts): Promise<MessageRecord> {
    const { env, index } = this.spool;
    const chunks = await this.writeChunks(id, body);
    const record = newMessageRecord(id, message, headers, chunks.size, chunks.sha256);
    try {
      // The record in the transaction of the last chunk, after every earlier one committed: a crash before it
      // leaves chunks without a record (debris). A small body is one transaction: chunk and record together.
      await env.write(() => {
        if (chunks.tail) env.bodies.putSync([id, chunks.written], chunks.tail);
        env.messages.putSync(id, encode(record));
        // A message queued by another process (a CLI sending a TLS report) reaches the relay's schedule this way.
        this.spool.changes.note(id);
      });
    } catch (error) {
      await this.dropChunks(id, chunks.written);
      throw error;
    }
    index.add(record);
    return index.view(record);
  }

  /**
   * Takes over a message of another store (a file spool being moved in) as it is: record, body, fallback items and
   * in-flight markers in one transaction after the earlier chunks. A message already stored under its id is left
   * as it is ('present'). Only the process that may clean calls it, before it serves anything.
   */
  async importMessage(record: MessageRecord, body: Readable | undefined, fallback: readonly FallbackItem[], inflightJobs: readonly string[]): Promise<'imported' | 'present'> {
    const { env, index } = this.spool;
    const id = record.id;
    if (!isMessageId(id)) throw new RangeError(`import: ${JSON.stringify(id)} is not a message id`);
    return this.chosen.run(id, async () => {
      if (env.messages.get(id) !== undefined) {
        body?.destroy();
        return 'present';
      }
      const chunks = body ? await this.writeChunks(id, body) : { written: 0, tail: undefined };
      try {
        await env.write(() => {
          if (chunks.tail) env.bodies.putSync([id, chunks.written], chunks.tail);
          env.messages.putSync(id, encode(record));
          for (const item of fallback) env.fallback.putSync(item.id, encode(item));
          for (const jobId of inflightJobs) env.inflight.putSync(jobId, '');
          this.spool.changes.note(id);
        });
      } catch (error) {
        await this.dropChunks(id, chunks.written);
        throw error;
      }
      index.add(record);
      for (const item of fallback) index.setFallback(item);
      return 'imported';
    });
  }

  /**
   * Streams a body into chunks under `id`, with backpressure. Every full chunk but the last is written (and
   * committed) here; the last one comes back as `tail` for the caller's record transaction. A body stream error
   * removes what was written and throws EnqueueAbortedError; a failing write throws its own error.
   */
  private async writeChunks(id: string, body: Readable): Promise<{ size: number; sha256: string; written: number; tail: Buffer | undefined }> {
    const { env } = this.spool;
    const hash = createHash('sha256');
    let size = 0;
    let chunks = 0;
    let uncommitted = 0;
    let last: Promise<boolean> | undefined;
    // A failing disk is a store failure, not an aborted body: keep the two apart for the inbound reply.
    let diskFailure: { error: unknown } | undefined;
    const put = async (bytes: Buffer): Promise<void> => {
      const write = env.bodies.put([id, chunks++], bytes);
      write.catch((error: unknown) => (diskFailure ??= { error }));
      last = write;
      uncommitted += bytes.length;
      if (uncommitted >= UNCOMMITTED_LIMIT) {
        uncommitted = 0;
        await write.catch(() => undefined);
      }
      if (diskFailure) throw diskFailure.error;
    };
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    try {
      for await (const piece of body) {
        const bytes = Buffer.isBuffer(piece) ? piece : Buffer.from(piece as string);
        hash.update(bytes);
        size += bytes.length;
        pending.push(bytes);
        pendingBytes += bytes.length;
        // Strictly more than a chunk: a full chunk at the very end stays pending, to go with the record.
        if (pendingBytes <= BODY_CHUNK) continue;
        const joined = Buffer.concat(pending, pendingBytes);
        let offset = 0;
        for (; joined.length - offset > BODY_CHUNK; offset += BODY_CHUNK) await put(joined.subarray(offset, offset + BODY_CHUNK));
        pending = [joined.subarray(offset)];
        pendingBytes = joined.length - offset;
      }
      if (last) await last.catch(() => undefined);
      if (diskFailure) throw diskFailure.error;
    } catch (error) {
      await this.dropChunks(id, chunks);
      if (diskFailure) throw diskFailure.error;
      throw new EnqueueAbortedError(`message body not stored: ${(error as Error).message}`, { cause: error });
    }
    const tail = pendingBytes > 0 ? Buffer.concat(pending, pendingBytes) : undefined;
    return { size, sha256: hash.digest('hex'), written: chunks, tail };
  }

  /** Removes the chunks of a body that was not stored (no record was written under its id). */
  private async dropChunks(id: string, written: number): Promise<void> {
    if (written === 0) return;
    const { env } = this.spool;
    await env.root
      .transaction(() => {
        if (env.messages.get(id) === undefined) this.spool.removeChunks(id);
      })
      .catch(() => undefined);
  }

  async openBody(id: string): Promise<Readable> {
    if (!isMessageId(id)) throw new NotFoundError(`message ${id} not found`);
    const { env } = this.spool;
    const record = await this.spool.readMessage(id);
    if (!record) throw new NotFoundError(`message ${id} not found`);
    if (record.bodyRemoved) throw new NotFoundError(`message ${id} has no body any more`);
    const expected = chunkCount(record.size);
    const stored = env.bodies.getKeysCount(chunkRange(id));
    if (stored === 0 && expected > 0) throw new NotFoundError(`message ${id} has no body`);
    const lastChunk = expected > 0 ? env.bodies.get([id, expected - 1]) : undefined;
    const storedBytes = stored === expected ? (expected - 1) * BODY_CHUNK + (lastChunk?.length ?? 0) : undefined;
    if (expected > 0 && storedBytes !== record.size) {
      throw await this.damagedBody(id, `body has ${stored} of the ${expected} chunks or a short last chunk for the ${record.size} bytes stored at enqueue`, 'body-size');
    }
    // Read one chunk at a time as the consumer pulls (no long read transaction); verified as it streams.
    let next = 0;
    const source = new Readable({
      read() {
        try {
          const chunk = next < expected ? env.bodies.get([id, next++]) : undefined;
          this.push(chunk ?? null);
        } catch (error) {
          this.destroy(error as Error);
        }
      },
    });
    const verifier = new BodyVerifier({ size: record.size, sha256: record.sha256 }, (reason, code) => this.damagedBody(id, reason, code));
    source.on('error', (error) => verifier.destroy(error));
    verifier.on('close', () => source.destroy());
    return source.pipe(verifier);
  }

  private async damagedBody(id: string, reason: string, code: 'body-size' | 'body-checksum'): Promise<Error> {
    await this.spool.quarantineMessage(id, 'body', code, reason).catch(() => undefined);
    return new DamagedEntryError(`message ${id}: ${reason}; quarantined`);
  }

  async claimDue(owner: string, limit: number, leaseMs: number, now = Date.now()): Promise<ClaimedJob[]> {
    await this.spool.refresh();
    const { index } = this.spool;
    const schedule = index.schedule;
    const leftBehind = await this.markers.leftBehind((jobId) => schedule.has(jobId));
    const leases = index.leases;
    const picked = schedule.takeDue(now, limit, (jobId) => leases.has(jobId));
    const resumed = new Set<string>();
    for (const [jobId, lease] of leases) {
      if (picked.length >= limit) break;
      if (lease.expiresAt > now) continue;
      picked.push(jobId);
      resumed.add(jobId);
    }
    // Leased synchronously, before any await, so concurrent claimers in this process never share a job.
    for (const jobId of picked) {
      leases.set(jobId, { owner, expiresAt: now + leaseMs });
      if (leftBehind.delete(jobId)) resumed.add(jobId);
    }
    // Each claim is checked against the record as last committed by any process (an admin command's hold included).
    if (picked.length > 0) this.spool.env.root.resetReadTxn();
    const claimed = (await Promise.all(picked.map((jobId) => this.verifyClaim(jobId, owner, resumed.has(jobId))))).filter((c): c is ClaimedJob => c !== undefined);
    await this.markers.mark(claimed.map((c) => c.job.id)).catch((error: Error) => {
      this.spool.logger.warn({ event: 'inflight-marker-failed', err: error.message }, 'could not record that deliveries started');
    });
    return claimed;
  }

  async renewLease(jobId: string, owner: string, leaseMs: number): Promise<void> {
    this.spool.index.heldLease(jobId, owner).expiresAt = Date.now() + leaseMs;
  }

  async releaseLease(jobId: string, owner: string): Promise<void> {
    this.spool.index.handBack(jobId, owner);
    await this.markers.clear(jobId).catch(() => undefined);
  }

  async completeJob(jobId: string, owner: string, result: JobResult): Promise<JobRecord> {
    const spool = this.spool;
    const { env, index } = spool;
    const { messageId } = jobOf(jobId);
    spool.index.heldLease(jobId, owner);
    const outcome = await env.write(() => {
      if (index.leases.get(jobId)?.owner !== owner) return { leaseLost: true as const };
      // Checked against the record as it is now, whoever changed it last (an admin command included).
      const read = spool.readMessageInTxn(messageId);
      if ('damaged' in read) return { damaged: read };
      const record = 'value' in read ? read.value : undefined;
      const at = record?.jobs.findIndex((j) => j.id === jobId) ?? -1;
      if (!record || at < 0) return { gone: true as const };
      const { job, fallback } = applyJobResult(record.jobs[at]!, record, result, Date.now());
      for (const item of fallback) env.fallback.putSync(item.id, encode(item));
      record.jobs[at] = job;
      env.messages.putSync(messageId, encode(record));
      this.markers.clearInTxn(jobId);
      return { record, job, fallback };
    });
    if ('leaseLost' in outcome) throw new LeaseLostError(`lease on ${jobId} is not held by ${owner}`);
    index.leases.delete(jobId);
    if ('damaged' in outcome && outcome.damaged) {
      spool.afterDamage(messageId, outcome.damaged);
      throw new DamagedEntryError(`message ${messageId}: ${outcome.damaged.damaged}`);
    }
    if ('gone' in outcome) {
      index.remove(messageId);
      throw new NotFoundError(`job ${jobId} not found (deleted while it was being delivered)`);
    }
    for (const item of outcome.fallback) index.setFallback(item);
    index.add(outcome.record);
    return withLease(outcome.job, undefined);
  }

  private async verifyClaim(jobId: string, owner: string, resumed: boolean): Promise<ClaimedJob | undefined> {
    const index = this.spool.index;
    const messageId = parseJobId(jobId)?.messageId ?? '';
    const record = await this.spool.readMessage(messageId);
    const job = record?.jobs.find((j) => j.id === jobId);
    const lease = index.leases.get(jobId);
    if (!record || !job || !isClaimable(job) || lease?.owner !== owner) {
      if (lease?.owner === owner) index.leases.delete(jobId);
      if (record) index.add(record);
      else index.remove(messageId);
      return undefined;
    }
    const { jobs: _jobs, ...rest } = record;
    return { job: withLease(job, lease), message: rest, ...(resumed ? { resumed } : {}) };
  }
}
