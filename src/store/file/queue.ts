import { createWriteStream, promises as fs } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isMessageId, jobOf, newMessageId, parseJobId } from '../ids';
import { applyJobResult, isClaimable, newMessageRecord, withLease } from '../records';
import type { JobQueue } from '../roles';
import { BodyDigest, verifiedBodyFile } from '../body-check';
import {
  DamagedEntryError,
  EnqueueAbortedError,
  NotFoundError,
  type ClaimedJob,
  type EnqueueOptions,
  type HeaderFacts,
  type JobRecord,
  type JobResult,
  type MessageRecord,
  type NewMessage,
} from '../types';
import { fsyncDir, tempName } from './durable';
import { InflightMarkers } from './inflight';
import type { FileSpool } from './spool';

/** Messages whose body facts are kept in memory for openBody (insertion order: the oldest are dropped first). */
const BODY_FACTS_LIMIT = 4096;

type BodyFacts = Pick<MessageRecord, 'size' | 'sha256'>;

/** The job queue over the embedded spool: durable enqueue, in-memory leases checked against disk, results. */
export class FileJobQueue implements JobQueue {
  private readonly markers: InflightMarkers;
  /**
   * Size and SHA-256 of bodies this process wrote or just read the metadata of (at claim). They never change for
   * a message id, so openBody checks the body against them without reading the metadata a third time.
   */
  private readonly bodyFacts = new Map<string, BodyFacts>();

  constructor(private readonly spool: FileSpool) {
    this.markers = new InflightMarkers(spool.layout.root);
  }

  async enqueue(message: NewMessage, body: Readable, headers: HeaderFacts = {}, options: EnqueueOptions = {}): Promise<MessageRecord> {
    const chosen = options.id;
    if (chosen === undefined) return this.store(newMessageId(), message, body, headers);
    if (!isMessageId(chosen)) throw new RangeError(`enqueue: ${JSON.stringify(chosen)} is not a message id`);
    // Looked up and written under the message's lock: a second write of the same id (a retry) returns the first
    // and never replaces its body.
    return this.spool.locked(chosen, async () => {
      const existing = await this.spool.readMeta(chosen);
      if (!existing) return this.store(chosen, message, body, headers);
      body.destroy();
      this.rememberBody(existing);
      return this.spool.index.view(existing);
    });
  }

  private async store(id: string, message: NewMessage, body: Readable, headers: HeaderFacts): Promise<MessageRecord> {
    const { layout, index } = this.spool;
    const temp = tempName(layout.tmp, `${id}.body`);
    const out = createWriteStream(temp, { flags: 'wx', mode: 0o600, flush: true });
    // A failing disk is a store failure, not an aborted body: keep the two apart for the inbound reply.
    // Whichever side fails first is the cause; pipeline then destroys the other with the same error.
    let firstFailure: 'body' | 'disk' | undefined;
    body.once('error', () => (firstFailure ??= 'body'));
    out.once('error', () => (firstFailure ??= 'disk'));
    const digest = new BodyDigest();
    try {
      await pipeline(body, digest, out);
    } catch (error) {
      // The file may still be being opened: remove it only once the stream is closed, or it would reappear.
      if (!out.closed) await new Promise<void>((resolve) => out.once('close', () => resolve()));
      await fs.rm(temp, { force: true });
      if (firstFailure === 'disk') throw error;
      throw new EnqueueAbortedError(`message body not stored: ${(error as Error).message}`, { cause: error });
    }
    const record = newMessageRecord(id, message, headers, out.bytesWritten, digest.digest());
    const bodyFile = layout.bodyFile(id);
    try {
      // Body before metadata: a crash in between leaves a body without metadata, which open() sets aside.
      await fs.rename(temp, bodyFile);
      await Promise.all([fsyncDir(layout.bodies), this.spool.writeMeta(record)]);
    } catch (error) {
      await fs.rm(temp, { force: true });
      await fs.rm(layout.metaFile(id), { force: true });
      await fs.rm(bodyFile, { force: true });
      throw error;
    }
    index.add(record);
    this.rememberBody(record);
    return index.view(record);
  }

  private rememberBody(record: MessageRecord): void {
    if (this.bodyFacts.has(record.id)) return;
    if (this.bodyFacts.size >= BODY_FACTS_LIMIT) this.bodyFacts.delete(this.bodyFacts.keys().next().value!);
    this.bodyFacts.set(record.id, { size: record.size, ...(record.sha256 !== undefined ? { sha256: record.sha256 } : {}) });
  }

  async openBody(id: string): Promise<Readable> {
    if (!isMessageId(id)) throw new NotFoundError(`message ${id} not found`);
    const known = this.bodyFacts.get(id);
    // A body is removed before its record says so: while the file opens, the facts known are enough. When it
    // does not, the metadata says why (message gone, body removed, or missing).
    const opened = known ? await this.openBodyFile(id) : undefined;
    let record: BodyFacts | undefined = opened ? known : undefined;
    let handle = opened;
    if (!handle) {
      const stored = await this.spool.readMeta(id);
      if (!stored) throw new NotFoundError(`message ${id} not found`);
      if (stored.bodyRemoved) throw new NotFoundError(`message ${id} has no body any more`);
      handle = await this.openBodyFile(id);
      if (!handle) throw new NotFoundError(`message ${id} has no body`);
      record = stored;
      this.rememberBody(stored);
    }
    if (!record) {
      await handle.close();
      throw new NotFoundError(`message ${id} not found`);
    }
    return verifiedBodyFile(handle, record, (reason, code) => this.damagedBody(id, reason, code));
  }

  /** The body file opened for reading; undefined when it is not there. */
  private async openBodyFile(id: string): Promise<fs.FileHandle | undefined> {
    try {
      return await fs.open(this.spool.layout.bodyFile(id), 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  private async damagedBody(id: string, reason: string, code: 'body-size' | 'body-checksum'): Promise<Error> {
    await this.spool.quarantineMessage(id, 'body', code, reason).catch(() => undefined);
    return new DamagedEntryError(`message ${id}: ${reason}; quarantined`);
  }

  async claimDue(owner: string, limit: number, leaseMs: number, now = Date.now()): Promise<ClaimedJob[]> {
    await this.spool.refresh();
    const schedule = this.spool.index.schedule;
    const leftBehind = await this.markers.leftBehind((jobId) => schedule.has(jobId));
    const leases = this.spool.index.leases;
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
      // A previous relay process was delivering it when it stopped without recording a result.
      if (leftBehind.delete(jobId)) resumed.add(jobId);
    }
    const claimed = (await Promise.all(picked.map((jobId) => this.verifyClaim(jobId, owner, resumed.has(jobId))))).filter((c): c is ClaimedJob => c !== undefined);
    await this.markers.mark(claimed.map((c) => c.job.id)).catch((error: Error) => {
      // Only the possible-duplicate warning after a crash depends on the marker; delivery goes on without it.
      this.spool.options.logger.warn({ event: 'inflight-marker-failed', err: error.message }, 'could not record that deliveries started');
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
    const parsed = jobOf(jobId);
    spool.index.heldLease(jobId, owner);
    const recorded = await spool.locked(parsed.messageId, async () => {
      spool.index.heldLease(jobId, owner);
      const record = await spool.readMeta(parsed.messageId, { throwIfDamaged: true });
      const index = record?.jobs.findIndex((j) => j.id === jobId) ?? -1;
      if (!record || index < 0) {
        spool.index.leases.delete(jobId);
        throw new NotFoundError(`job ${jobId} not found (deleted while it was being delivered)`);
      }
      const { job, fallback } = applyJobResult(record.jobs[index]!, record, result, Date.now());
      // Items first: a crash before the job is saved replays the attempt, which rewrites the same item ids.
      await Promise.all(fallback.map((item) => spool.writeFallback(item)));
      record.jobs[index] = job;
      await spool.writeMeta(record);
      spool.index.leases.delete(jobId);
      spool.index.add(record);
      return withLease(job, undefined);
    });
    await this.markers.clear(jobId).catch(() => undefined);
    return recorded;
  }

  private async verifyClaim(jobId: string, owner: string, resumed: boolean): Promise<ClaimedJob | undefined> {
    const index = this.spool.index;
    const messageId = parseJobId(jobId)?.messageId ?? '';
    const record = await this.spool.readMeta(messageId);
    const job = record?.jobs.find((j) => j.id === jobId);
    const lease = index.leases.get(jobId);
    if (!record || !job || !isClaimable(job) || lease?.owner !== owner) {
      if (lease?.owner === owner) index.leases.delete(jobId);
      if (record) index.add(record);
      else index.remove(messageId);
      return undefined;
    }
    this.rememberBody(record);
    const { jobs: _jobs, ...message } = record;
    return { job: withLease(job, lease), message, ...(resumed ? { resumed } : {}) };
  }
}
