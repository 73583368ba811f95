import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { verifiedBody, verifiedBodyFile } from '../body-check';
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
import { parseSlotRef, slotSizeFor, type SlotRef } from './body-slabs';
import { encode } from './codec';
import { LmdbInflight } from './inflight';
import { chunkRange } from './quarantine';
import type { LmdbSpool } from './spool';

/**
 * The size of a body chunk in spools written before bodies were files (read for them only), and of each write and
 * read of a body file.
 */
export const BODY_CHUNK = 256 * 1024;

/** How many chunks a body of `size` bytes was stored in (spools written before bodies were files). */
export function chunkCount(size: number): number {
  return Math.ceil(size / BODY_CHUNK);
}

/**
 * Every body is a file (lmdb-bodies/<id>, body-files.ts); LMDB holds the records. Two reasons, both measured:
 * - Deleting from LMDB frees pages without overwriting them, so a body "removed" by the retention sweep stayed in
 *   data.mdb, readable, until LMDB happened to reuse its pages (the portal's canary test found the plaintext there
 *   after the sweep). Unlinking a file takes it out of the spool at once, as the file store does.
 * - LMDB reads through a shared memory map: bodies in it were mapped into the relay's RSS as it relayed them (a
 *   50 MiB message grew RSS by 77-91 MiB, against the < 64 MB target); a file is read with read().
 */
interface StoredBody {
  size: number;
  sha256: string;
  /** Whether a file was written (an empty body has none). */
  file: boolean;
  /** The slab slot holding the body instead (the relay, bodies of up to 256 KiB): mapped in the record's transaction. */
  slot?: SlotRef;
}

/**
 * The job queue over LMDB: enqueue with backpressure (the body into its file), in-memory leases checked in the
 * transaction, results.
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
    const stored = await this.writeBody(id, body);
    const record = newMessageRecord(id, message, headers, stored.size, stored.sha256);
    try {
      // The record once its body file is flushed: a crash before it leaves a file without a record (debris).
      await env.write(() => {
        env.messages.putSync(id, encode(record));
        if (stored.slot) this.spool.slots.mapInTxn(id, stored.slot);
        // A message queued by another process (a CLI sending a TLS report) reaches the relay's schedule this way.
        this.spool.changes.note(id);
      });
    } catch (error) {
      await this.dropBody(id, stored);
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
      const stored: Pick<StoredBody, 'file' | 'slot'> = body ? await this.writeBody(id, body) : { file: false };
      try {
        await env.write(() => {
          env.messages.putSync(id, encode(record));
          if (stored.slot) this.spool.slots.mapInTxn(id, stored.slot);
          for (const item of fallback) env.fallback.putSync(item.id, encode(item));
          for (const jobId of inflightJobs) env.inflight.putSync(jobId, '');
          this.spool.changes.note(id);
        });
      } catch (error) {
        await this.dropBody(id, stored);
        throw error;
      }
      index.add(record);
      for (const item of fallback) index.setFallback(item);
      return 'imported';
    });
  }

  /**
   * Writes a body into its file, reading it with backpressure (writes of a chunk or more; the next piece is read only
   * once the last write is done), then flushes the file and fsyncs its folder, all before this resolves. A body
   * stream error removes the file and throws EnqueueAbortedError; a failing write throws its own error (a store
   * failure, not an aborted body). An empty body has no file.
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
    const open = async (): Promise<FileHandle> => {
      handle ??= await disk(() => bodyFiles.create(id));
      created = true;
      return handle;
    };
    try {
      for await (const piece of body) {
        const bytes = Buffer.isBuffer(piece) ? piece : Buffer.from(piece as string);
        hash.update(bytes);
        size += bytes.length;
        pending.push(bytes);
        pendingBytes += bytes.length;
        if (pendingBytes < BODY_CHUNK) continue;
        const file = await open();
        const joined = Buffer.concat(pending, pendingBytes);
        pending = [];
        pendingBytes = 0;
        await disk(() => writeAll(file, joined));
      }
      if (size === 0) return { size, sha256: hash.digest('hex'), file: false };
      // Most mail ends here before its first write: into a slot when this process hands them out (the relay).
      if (!handle && bodyFiles.slabs.allocates && slotSizeFor(pendingBytes) !== undefined) {
        const bytes = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
        const slot = await disk(() => bodyFiles.slabs.put(bytes));
        return { size, sha256: hash.digest('hex'), file: false, slot };
      }
      // Otherwise one open, write, flush and close.
      const file = await open();
      if (pendingBytes > 0) await disk(() => writeAll(file, pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes)));
      await disk(() => file.datasync());
      handle = undefined;
      await disk(() => file.close());
      // One folder fsync for all bodies finished in the same turn of the event loop (fsyncDir shares it).
      await disk(() => bodyFiles.synced());
      return { size, sha256: hash.digest('hex'), file: true };
    } catch (error) {
      await handle?.close().catch(() => undefined);
      if (created) await bodyFiles.remove([id]).catch(() => undefined);
      if (diskFailure) throw diskFailure.error;
      throw new EnqueueAbortedError(`message body not stored: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Removes the file or frees the slot of a body that was not stored (no record was written under its id). */
  private async dropBody(id: string, body: { file: boolean; slot?: SlotRef }): Promise<void> {
    if (!body.file && !body.slot) return;
    const { env, bodyFiles } = this.spool;
    // Checked in a write transaction (the latest data): a record that committed after all keeps its body.
    const unused = await env.root.transaction(() => env.messages.get(id) === undefined).catch(() => false);
    if (!unused) return;
    if (!body.slot) {
      await bodyFiles.remove([id]).catch(() => undefined);
      return;
    }
    try {
      bodyFiles.slabs.zero(body.slot);
      bodyFiles.slabs.release([body.slot]);
    } catch {
      // Left unmapped and not zero: the relay's next start zeroes it.
    }
  }

  async openBody(id: string): Promise<Readable> {
    if (!isMessageId(id)) throw new NotFoundError(`message ${id} not found`);
    const { env, bodyFiles } = this.spool;
    const record = await this.spool.readMessage(id);
    if (!record) throw new NotFoundError(`message ${id} not found`);
    if (record.bodyRemoved) throw new NotFoundError(`message ${id} has no body any more`);
    const slotText = record.size > 0 ? this.spool.slots.slotOf(id) : undefined;
    if (slotText !== undefined) return this.slotBody(id, record, slotText);
    const file = record.size > 0 ? await bodyFiles.open(id) : undefined;
    if (file) return this.fileBody(id, record, file);
    // No file: a spool written before bodies were files has the body in chunks.
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
    return verifiedBody(source, record, (reason, code) => this.damagedBody(id, reason, code));
  }

  /** A body file, read a chunk at a time with read() (never mapped), checked against its record's size and SHA-256. */
  private fileBody(id: string, record: MessageRecord, file: FileHandle): Promise<Readable> {
    return verifiedBodyFile(file, record, (reason, code) => this.damagedBody(id, reason, code), BODY_CHUNK);
  }

  /**
   * A body in a slab slot: read and checked whole before it is handed out. Bytes that do not match may mean the body
   * was removed and its slot reused since the record was read (slots are read without a lock): the record and the
   * slot map are read again, and only a body still mapped to the same slot is called damaged.
   */
  private async slotBody(id: string, record: MessageRecord, slotText: string): Promise<Readable> {
    const { env, bodyFiles } = this.spool;
    const ref = parseSlotRef(slotText);
    const bytes = ref && ref.size >= record.size ? bodyFiles.slabs.read(ref, record.size) : undefined;
    if (bytes && (record.sha256 === undefined || createHash('sha256').update(bytes).digest('hex') === record.sha256)) return Readable.from([bytes]);
    env.root.resetReadTxn();
    const now = await this.spool.readMessage(id);
    if (!now || now.bodyRemoved || this.spool.slots.slotOf(id) !== slotText) throw new NotFoundError(`message ${id} has no body any more`);
    if (!ref || ref.size < record.size) throw await this.damagedBody(id, `body slot ${JSON.stringify(slotText)} cannot hold the ${record.size} bytes stored at enqueue`, 'body-size');
    if (!bytes) throw await this.damagedBody(id, `body slot ${slotText} is past the end of its slab`, 'body-size');
    throw await this.damagedBody(id, 'body does not match the SHA-256 stored at enqueue', 'body-checksum');
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
