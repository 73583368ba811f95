import type { Readable } from 'node:stream';
import { isMessageId, newMessageId, parseJobId } from '../ids';
import { applyJobResult, newMessageRecord, withLease } from '../records';
import type { JobQueue } from '../roles';
import { BodyVerifier } from '../body-check';
import {
  DamagedEntryError,
  LeaseLostError,
  NotFoundError,
  type ClaimedJob,
  type EnqueueOptions,
  type HeaderFacts,
  type JobRecord,
  type JobResult,
  type MessageRecord,
  type NewMessage,
} from '../types';
import { appendPiece, BLOB_PIECE, readBlob, uploadBlobHead, uploadPiece } from './blobs';
import { checkStored, checkStoredJob, pipelineValues, UnconfirmedWriteError, type RedisCore, type StoredMessage } from './core';
import { ENQUEUE_FOUND, scriptOutcome } from './scripts';

/** The job queue in Redis: streamed enqueue, leases in a zset + owners hash, results by compare-and-set. */
export class RedisJobQueue implements JobQueue {
  /** `readMessage`: the admin's full record read (jobs and leases), for a retry that finds its first write. */
  constructor(
    private readonly core: RedisCore,
    private readonly readMessage: (id: string) => Promise<MessageRecord | undefined>,
  ) {}

  async enqueue(message: NewMessage, body: Readable, headers: HeaderFacts = {}, options: EnqueueOptions = {}): Promise<MessageRecord> {
    const { redis, keys: k } = this.core;
    const chosen = options.id;
    if (chosen !== undefined && !isMessageId(chosen)) throw new RangeError(`enqueue: ${JSON.stringify(chosen)} is not a message id`);
    const id = chosen ?? newMessageId();
    const upload = k.bodyUpload(id);
    // A retry under the caller's id starts its upload afresh: a failed first try may have left part of one.
    if (chosen !== undefined) await redis.del(upload);
    try {
      // The body's last piece (all of a small one) is sent with the commit below.
      const { size, sha256, rest: lastPiece } = await uploadBlobHead(redis, upload, body, 'message body');
      const record = newMessageRecord(id, message, headers, size, sha256);
      const keys = [upload, k.body(id), k.message(id), k.messages(), k.jobStates(), k.due(), k.finished()];
      const { jobs, ...rest } = record;
      const stored: StoredMessage = { ...rest, jobIds: jobs.map((j) => j.id) };
      const args: (string | number)[] = [JSON.stringify(stored), id, record.receivedAt, size];
      for (const job of record.jobs) {
        keys.push(k.job(job.id));
        args.push(job.id, JSON.stringify(job), job.dueAt);
      }
      if (!this.core.confirming) {
        // One round trip: the script checks the upload's length, so a piece that failed fails the commit too.
        const pipeline = lastPiece.length > 0 ? uploadPiece(redis.pipeline(), upload, lastPiece) : redis.pipeline();
        (pipeline as unknown as { sgEnqueue(...args: (string | number)[]): unknown }).sgEnqueue(keys.length, ...keys, ...args);
        const values = await pipelineValues(pipeline);
        return values[values.length - 1] === ENQUEUE_FOUND ? await this.existing(id) : record;
      }
      if (lastPiece.length > 0) await appendPiece(redis, upload, lastPiece);
      let reply: number;
      try {
        reply = await this.core.confirmed('sgEnqueue', keys.length, ...keys, ...args);
      } catch (error) {
        // Committed, but not confirmed by enough replicas in time (cluster): the client is told 4xx and sends it
        // again, so this copy is taken back if it still can be (else it is delivered too: a duplicate, never a loss).
        // A caller that chose the id sends it again under that id: the copy stays, and that retry's WAIT confirms it.
        if (error instanceof UnconfirmedWriteError && chosen === undefined) await this.core.removeMessage(stored).catch(() => undefined);
        throw error;
      }
      return reply === ENQUEUE_FOUND ? await this.existing(id) : record;
    } catch (error) {
      await redis.del(upload).catch(() => undefined);
      throw error;
    }
  }

  /** The record a first write under a caller-chosen id stored (found again by its retry), as it is now. */
  private async existing(id: string): Promise<MessageRecord> {
    const record = await this.readMessage(id);
    if (!record) throw new NotFoundError(`message ${id} was stored, then removed before it could be read back`);
    return record;
  }

  async openBody(id: string): Promise<Readable> {
    if (!isMessageId(id)) throw new NotFoundError(`message ${id} not found`);
    const { redis, keys: k } = this.core;
    const key = k.body(id);
    // One round trip for the record, the body's length and its first piece (the whole body when it is small): a
    // STRLEN of 0 means no body or an empty one, told apart below only in that rare case.
    const [raw, length, firstPiece] = (await pipelineValues(
      redis
        .pipeline()
        .get(k.message(id))
        .strlen(key)
        .getrangeBuffer(key, 0, BLOB_PIECE - 1),
    )) as [string | null, number, Buffer];
    const stored = await this.core.storedFrom(raw, id);
    if (!stored) throw new NotFoundError(`message ${id} not found`);
    if (stored.bodyRemoved) throw new NotFoundError(`message ${id} has no body any more`);
    const size = stored.size;
    if (length === 0 && (await redis.exists(key)) === 0) throw new NotFoundError(`message ${id} has no body`);
    if (length !== size) throw await this.damagedBody(id, `body has ${length} of the ${size} bytes stored at enqueue`, 'body-size');
    // Verified as it streams: a body changed since enqueue fails the stream before it ends (no second read).
    const verifier = new BodyVerifier({ size, sha256: stored.sha256 }, (reason, code) => this.damagedBody(id, reason, code));
    const source = readBlob(redis, key, size, `body of message ${id}`, (error) => this.core.classify(error), firstPiece);
    source.on('error', (error) => verifier.destroy(error));
    verifier.on('close', () => source.destroy());
    return source.pipe(verifier);
  }

  private async damagedBody(id: string, reason: string, code: 'body-size' | 'body-checksum'): Promise<Error> {
    await this.core.quarantine(id, 'body', code, reason).catch(() => undefined);
    return new DamagedEntryError(`message ${id}: ${reason}; quarantined`);
  }

  async claimDue(owner: string, limit: number, leaseMs: number, now = Date.now()): Promise<ClaimedJob[]> {
    const { redis, keys: k } = this.core;
    const expiresAt = now + leaseMs;
    const marked = await this.core.confirmed('sgClaim', k.due(), k.leases(), k.leaseOwners(), k.jobStates(), now, limit, expiresAt, owner);
    if (marked.length === 0) return [];
    const resumed = new Set(marked.filter((id) => id.startsWith('!')).map((id) => id.slice(1)));
    const ids = marked.map((id) => (id.startsWith('!') ? id.slice(1) : id));
    const messageIds = [...new Set(ids.map((id) => parseJobId(id)?.messageId ?? ''))];
    // The jobs and their messages in one round trip.
    const [jobs, rawMessages] = (await pipelineValues(
      redis
        .pipeline()
        .mget(ids.map((id) => k.job(id)))
        .mget(messageIds.map((id) => k.message(id))),
    )) as [(string | null)[], (string | null)[]];
    const messages = new Map<string, StoredMessage>();
    const damaged = new Set<string>();
    for (const [i, raw] of rawMessages.entries()) {
      const messageId = messageIds[i]!;
      if (!raw) continue;
      const checked = checkStored(raw, messageId);
      if (checked.ok) {
        messages.set(messageId, checked.value);
      } else {
        // A damaged record never reaches delivery, and never stops the jobs claimed with it.
        damaged.add(messageId);
        await this.core.quarantine(messageId, 'message', checked.code, checked.reason);
      }
    }
    const claimed: ClaimedJob[] = [];
    for (const [i, jobId] of ids.entries()) {
      const raw = jobs[i];
      const messageId = parseJobId(jobId)?.messageId ?? '';
      if (damaged.has(messageId)) continue;
      const stored = messages.get(messageId);
      if (!raw || !stored) {
        // Deleted between the claim and this read.
        await redis.sgReleaseLease(k.leases(), k.leaseOwners(), k.jobStates(), k.due(), jobId, owner, now);
        continue;
      }
      const job = checkStoredJob(raw, jobId);
      if (!job.ok) {
        damaged.add(messageId);
        await this.core.quarantine(messageId, 'job', job.code, job.reason, jobId);
        continue;
      }
      const { jobIds: _jobIds, ...message } = stored;
      claimed.push({ job: withLease(job.value, { owner, expiresAt }), message, ...(resumed.has(jobId) ? { resumed: true } : {}) });
    }
    // Another job of a message found damaged later in this batch was quarantined with it.
    return claimed.filter((c) => !damaged.has(c.message.id));
  }

  async renewLease(jobId: string, owner: string, leaseMs: number): Promise<void> {
    const k = this.core.keys;
    scriptOutcome(await this.core.redis.sgRenewLease(k.leases(), k.leaseOwners(), jobId, owner, Date.now() + leaseMs), { jobId, owner });
  }

  async releaseLease(jobId: string, owner: string): Promise<void> {
    const k = this.core.keys;
    scriptOutcome(await this.core.redis.sgReleaseLease(k.leases(), k.leaseOwners(), k.jobStates(), k.due(), jobId, owner, Date.now()), { jobId, owner });
  }

  async completeJob(jobId: string, owner: string, result: JobResult): Promise<JobRecord> {
    const { redis, keys: k } = this.core;
    const messageId = parseJobId(jobId)?.messageId ?? '';
    // The lease, the message and the job in one round trip; checked in that order, as if read one after the other.
    const [leaseOwner, messageRaw, jobRaw] = (await pipelineValues(redis.pipeline().hget(k.leaseOwners(), jobId).get(k.message(messageId)).get(k.job(jobId)))) as [
      string | null,
      string | null,
      string | null,
    ];
    if (leaseOwner !== owner) throw new LeaseLostError(`lease on ${jobId} is not held by ${owner}`);
    const stored = await this.core.storedFrom(messageRaw, messageId);
    if (!stored) throw new NotFoundError(`job ${jobId} not found`);
    return this.core.updateJob(
      jobId,
      (current) => {
        const { job: next, fallback } = applyJobResult(current, stored, result, Date.now());
        return { job: next, fallback, requireOwner: owner, dropLease: true };
      },
      stored,
      jobRaw,
    );
  }
}
