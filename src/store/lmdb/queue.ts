import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
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
 * A body larger than this is stored as a file (lmdb-bodies/<id>, body-files.ts), not in chunks. LMDB reads through
 * a shared memory map, so relaying a body from chunks maps all of it into the relay's memory (a 50 MiB message grew
 * RSS by 77-91 MiB, against the < 64 MB target); a file is read with read(), a piece at a time. Smaller bodies (most
 * mail) stay in LMDB: one transaction with the record and the last chunk, no file to create, flush and remove.
 * Enqueue holds up to this many bytes in memory before it knows which way a body goes.
 */
export const SPILL_SIZE = 1024 * 1024;

/** How many chunks a body of `size` bytes is stored in. */
export function chunkCount(size: number): number {
  return Math.ceil(size / BODY_CHUNK);
}

/** Where a body of `size` bytes is stored: a file (larger than SPILL_SIZE), else chunks. */
export function isFileBody(size: number): boolean {
  return size > SPILL_SIZE;
}

/** A body stored for a record still to commit: chunks (all but `tail` already committed) or a flushed file. */
interface StoredBody {
  size: number;
  sha256: string;
  /** Chunks committed so far (the tail, if any, is chunk number `written`). */
  written: number;
  tail: Buffer | undefined;
  file: boolean;
}

/**
 * The job queue over LMDB: enqueue with backpressure (a body in chunks, or a file past SPILL_SIZE), in-memory leases
 * checked in the transaction, results.
 */
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
    const chunks = await this.writeBody(id, body);
    const record = newMessageRecord(id, message, headers, chunks.size, chunks.sha256);
    try {
      // The record in the transaction of the last chunk, after every earlier one committed (or after the body file
      // is flushed): a crash before it leaves chunks or a file without a record (debris). A small body is one
      // transaction: chunk and record together.
      await env.write(() => {
        if (chunks.tail) env.bodies.putSync([id, chunks.written], chunks.tail);
        env.messages.putSync(id, encode(record));
        // A message queued by another process (a CLI sending a TLS report) reaches the relay's schedule this way.
        this.spool.changes.note(id);
      });
    } catch (error) {
      await this.dropBody(id, chunks);
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
      const chunks = body ? await this.writeBody(id, body) : { written: 0, tail: undefined, file: false };
      try {
        await env.write(() => {
          if (chunks.tail) env.bodies.putSync([id, chunks.written], chunks.tail);
          env.messages.putSync(id, encode(record));
          for (const item of fallback) env.fallback.putSync(item.id, encode(item));
          for (const jobId of inflightJobs) env.inflight.putSync(jobId, '');
          this.spool.changes.note(id);
        });
      } catch (error) {
        await this.dropBody(id, chunks);
        throw error;
      }
      index.add(record);
      for (const item of fallback) index.setFallback(item);
      return 'imported';
    });
  }

  /**
   * Stores a body under `id`, reading it with backpressure. Up to SPILL_SIZE bytes are held in memory: a body that
   * ends within them goes into chunks (writeChunks); a longer one into its file, written as it streams, flushed, its
   * folder fsynced, all before this resolves. A body stream error removes what was written and throws
   * EnqueueAbortedError; a failing write throws its own error (a store failure, not an aborted body).
   */
  private async writeBody(id: string, body: Readable): Promise<StoredBody> {
    const { bodyFiles } = this.spool;
    const hash = createHash('sha256');
    let size = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let handle: FileHandle | undefined;
    let created = false;
    // A failing disk is a store failure, not an aborted body: keep the two apart for the inbound reply.
    let diskFailure: { error: unknown } | undefined;
    const disk = async <T>(step: () => Promise<T>): Promise<T> => {
      try {
        return await step();
      } catch (error) {
        diskFailure ??= { error };
        throw error;
      }
    };
    try {
      for await (const piece of body) {
        const bytes = Buffer.isBuffer(piece) ? piece : Buffer.from(piece as string);
        hash.update(bytes);
        size += bytes.length;
        pending.push(bytes);
        pendingBytes += bytes.length;
        if (!handle) {
          if (size <= SPILL_SIZE) continue;
          handle = await disk(() => bodyFiles.create(id));
          created = true;
        }
        // In writes of at least a chunk; the next piece is read only once this one is written (backpressure).
        if (pendingBytes < BODY_CHUNK) continue;
        const joined = Buffer.concat(pending, pendingBytes);
        pending = [];
        pendingBytes = 0;
        const file = handle;
        await disk(() => writeAll(file, joined));
      }
      if (handle) {
        const file = handle;
        if (pendingBytes > 0) await disk(() => writeAll(file, Buffer.concat(pending, pendingBytes)));
        await disk(() => file.datasync());
        handle = undefined;
        await disk(() => file.close());
        await disk(() => bodyFiles.synced());
        return { size, sha256: hash.digest('hex'), written: 0, tail: undefined, file: true };
      }
    } catch (error) {
      await handle?.close().catch(() => undefined);
      if (created) await bodyFiles.remove([id]).catch(() => undefined);
      if (diskFailure) throw diskFailure.error;
      throw new EnqueueAbortedError(`message body not stored: ${(error as Error).message}`, { cause: error });
    }
    const chunks = await this.writeChunks(id, pending, pendingBytes);
    return { size, sha256: hash.digest('hex'), ...chunks, file: false };
  }

  /**
   * Puts a body of at most SPILL_SIZE bytes (read whole) into chunks under `id`: every full chunk but the last is
   * written (and committed) here; the last one comes back as `tail` for the caller's record transaction. A failing
   * write removes what was written and throws its own error.
   */
  private async writeChunks(id: string, pieces: Buffer[], bytes: number): Promise<{ written: number; tail: Buffer | undefined }> {
    if (bytes === 0) return { written: 0, tail: undefined };
    const { env } = this.spool;
    const joined = Buffer.concat(pieces, bytes);
    let written = 0;
    let offset = 0;
    const writes: Array<Promise<boolean>> = [];
    // Strictly more than a chunk left: a full chunk at the very end is the tail, to go with the record.
    for (; joined.length - offset > BODY_CHUNK; offset += BODY_CHUNK) writes.push(env.bodies.put([id, written++], joined.subarray(offset, offset + BODY_CHUNK)));
    const failures = writes.length === 0 ? [] : (await Promise.allSettled(writes)).filter((w): w is PromiseRejectedResult => w.status === 'rejected');
    if (failures.length > 0) {
      await this.dropBody(id, { written, file: false });
      throw failures[0]!.reason;
    }
    return { written, tail: joined.subarray(offset) };
  }

  /** Removes the chunks or the file of a body that was not stored (no record was written under its id). */
  private async dropBody(id: string, body: { written: number; file: boolean }): Promise<void> {
    if (body.written === 0 && !body.file) return;
    const { env } = this.spool;
    const unused = await env.root
      .transaction(() => {
        if (env.messages.get(id) !== undefined) return false;
        this.spool.removeChunks(id);
        return true;
      })
      .catch(() => false);
    if (unused && body.file) await this.spool.bodyFiles.remove([id]).catch(() => undefined);
  }

  async openBody(id: string): Promise<Readable> {
    if (!isMessageId(id)) throw new NotFoundError(`message ${id} not found`);
    const { env, bodyFiles } = this.spool;
    const record = await this.spool.readMessage(id);
    if (!record) throw new NotFoundError(`message ${id} not found`);
    if (record.bodyRemoved) throw new NotFoundError(`message ${id} has no body any more`);
    if (isFileBody(record.size)) {
      const file = await bodyFiles.open(id);
      if (file) return this.fileBody(id, record, file);
      // No file: a body stored before large bodies were files is in chunks.
    }
    const expected = chunkCount(record.size);
    const stored = env.bodies.getKeysCount(chunkRange(id));
    if (stored === 0 && expected > 0) {
      // A file under a record too small for one: a body longer than its record says (imported damaged); checked as it streams.
      const file = isFileBody(record.size) ? undefined : await bodyFiles.open(id);
      if (file) return this.fileBody(id, record, file);
      throw new NotFoundError(`message ${id} has no body`);
    }
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
    return this.verified(id, record, source);
  }

  /** A body file, read a chunk at a time with read() (never mapped), checked against its record's size and SHA-256. */
  private async fileBody(id: string, record: MessageRecord, file: FileHandle): Promise<Readable> {
    let size: number;
    try {
      size = (await file.stat()).size;
    } catch (error) {
      await file.close().catch(() => undefined);
      throw error;
    }
    if (size !== record.size) {
      await file.close().catch(() => undefined);
      throw await this.damagedBody(id, `body file has ${size} of the ${record.size} bytes stored at enqueue`, 'body-size');
    }
    return this.verified(id, record, file.createReadStream({ highWaterMark: BODY_CHUNK }));
  }

  /** `source` through a BodyVerifier: a body that does not match its record fails (and is quarantined) at its end. */
  private verified(id: string, record: MessageRecord, source: Readable): Readable {
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

/** Writes all of `bytes` at the file's current position (a write may take fewer bytes than it was given). */
async function writeAll(file: FileHandle, bytes: Buffer): Promise<void> {
  for (let offset = 0; offset < bytes.length;) offset += (await file.write(bytes, offset, bytes.length - offset)).bytesWritten;
}
