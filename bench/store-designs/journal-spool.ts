import { createHash } from 'node:crypto';
import { promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { fsyncDir } from '../../src/store/file/durable';
import { chainEvidence } from '../../src/store/evidence-chain';
import { newMessageId } from '../../src/store/ids';
import { newMessageRecord } from '../../src/store/records';
import type { ClaimedJob, EvidenceRecord, EvidenceRecordInput, HeaderFacts, JobRecord, JobResult, MessageRecord, NewMessage } from '../../src/store/types';
import type { HotPathStore } from './design';
import { GroupCommit } from './group-commit';
import { PrototypeQueue, verifiedBody } from './prototype-queue';

/**
 * MEASUREMENT PROTOTYPE, not product code: the spool's hot-path writes as frames appended to one segment file,
 * group-committed (group-commit.ts: one write and one fdatasync per batch of concurrent appends).
 *
 *   frame   = u32 payload length | u32 CRC-32 of payload | payload
 *   payload = u8 type | u32 JSON length | JSON | raw bytes
 *     'B' body chunk   JSON {id, n}                  raw: the chunk (appended as it arrives, not synced alone)
 *     'M' message      JSON MessageRecord            synced: the `250` waits for it (and so for its chunks before it)
 *     'E' evidence     JSON EvidenceRecord[]         synced
 *     'R' result       JSON {id, job: JobRecord}     synced
 *
 * Opening scans the segment (the recovery scan): frames are checked by length and CRC, a torn tail (a batch never
 * acknowledged) is cut off, and the newest state of every message, its body chunks' places and the evidence head
 * are rebuilt in memory. Left out, and needed by a real one: segment rotation and background compaction (copy live
 * messages' frames into a new segment, fsync, rename, drop the old one), an on-disk index so start-up does not read
 * every segment, the admin/fallback/portal/retention roles, and a way for the CLI to read while the relay writes.
 */

const HEADER = 8;
const SEGMENT = 'segment-000001.log';

type Kind = 'B' | 'M' | 'E' | 'R';

/** One frame's bytes (header included). */
export function encodeFrame(kind: Kind, json: unknown, raw?: Buffer): Buffer[] {
  const text = Buffer.from(JSON.stringify(json), 'utf8');
  const head = Buffer.alloc(5);
  head.write(kind, 0, 'latin1');
  head.writeUInt32BE(text.length, 1);
  let crc = crc32(head);
  crc = crc32(text, crc);
  if (raw) crc = crc32(raw, crc);
  const frame = Buffer.alloc(HEADER);
  frame.writeUInt32BE(head.length + text.length + (raw?.length ?? 0), 0);
  frame.writeUInt32BE(crc, 4);
  return raw ? [frame, head, text, raw] : [frame, head, text];
}

export interface Frame {
  kind: Kind;
  json: unknown;
  /** Where the raw bytes sit in the file, and how many. */
  rawAt: number;
  rawLength: number;
}

/** The frames of a segment up to the first torn or damaged one; `end` is where the good ones stop. */
export function decodeFrames(data: Buffer): { frames: Frame[]; end: number } {
  const frames: Frame[] = [];
  let at = 0;
  while (at + HEADER <= data.length) {
    const length = data.readUInt32BE(at);
    const payloadAt = at + HEADER;
    if (length < 5 || payloadAt + length > data.length) break;
    const payload = data.subarray(payloadAt, payloadAt + length);
    if (crc32(payload) !== data.readUInt32BE(at + 4)) break;
    const jsonLength = payload.readUInt32BE(1);
    if (5 + jsonLength > length) break;
    const kind = payload.toString('latin1', 0, 1) as Kind;
    const json = JSON.parse(payload.toString('utf8', 5, 5 + jsonLength)) as unknown;
    frames.push({ kind, json, rawAt: payloadAt + 5 + jsonLength, rawLength: length - 5 - jsonLength });
    at = payloadAt + length;
  }
  return { frames, end: at };
}

interface Stored {
  record: MessageRecord;
  chunks: Array<{ at: number; length: number }>;
}

export class JournalSpool implements HotPathStore {
  private readonly queue = new PrototypeQueue();
  private readonly messages = new Map<string, Stored>();
  /** Chunk places of bodies still streaming in (their 'M' frame not yet appended). */
  private readonly incoming = new Map<string, Array<{ at: number; length: number }>>();
  private head: { seq: number; hash: string } | undefined;

  private constructor(
    private readonly handle: fs.FileHandle,
    private readonly commit: GroupCommit,
  ) {}

  syncs(): number {
    return this.commit.syncs;
  }

  static async open(dir: string): Promise<JournalSpool> {
    await fs.mkdir(dir, { recursive: true });
    const file = path.join(dir, SEGMENT);
    const existed = await fs.stat(file).catch(() => undefined as Stats | undefined);
    const handle = await fs.open(file, 'a+', 0o600);
    if (!existed) await fsyncDir(dir);
    const data = existed ? await handle.readFile() : Buffer.alloc(0);
    const { frames, end } = decodeFrames(data);
    if (end < data.length) {
      // A torn tail: appended but never synced, so never acknowledged. Cut off before anything new is appended.
      await handle.truncate(end);
      await handle.datasync();
    }
    const spool = new JournalSpool(handle, new GroupCommit(handle, end));
    spool.replay(frames);
    return spool;
  }

  private replay(frames: Frame[]): void {
    const chunks = new Map<string, Array<{ at: number; length: number }>>();
    for (const frame of frames) {
      if (frame.kind === 'B') {
        const { id } = frame.json as { id: string };
        chunks.set(id, [...(chunks.get(id) ?? []), { at: frame.rawAt, length: frame.rawLength }]);
      } else if (frame.kind === 'M') {
        const record = frame.json as MessageRecord;
        this.messages.set(record.id, { record, chunks: chunks.get(record.id) ?? [] });
        chunks.delete(record.id);
      } else if (frame.kind === 'R') {
        const { id, job } = frame.json as { id: string; job: JobRecord };
        const stored = this.messages.get(id);
        if (stored) stored.record = { ...stored.record, jobs: stored.record.jobs.map((j) => (j.id === job.id ? job : j)) };
      } else if (frame.kind === 'E') {
        const records = frame.json as EvidenceRecord[];
        const last = records[records.length - 1];
        if (last) this.head = { seq: last.seq, hash: last.hash };
      }
    }
    for (const { record } of this.messages.values()) this.queue.offer(record);
  }

  async enqueue(message: NewMessage, body: Readable, headers: HeaderFacts): Promise<MessageRecord> {
    const id = newMessageId();
    const digest = createHash('sha256');
    const chunks: Array<{ at: number; length: number }> = [];
    this.incoming.set(id, chunks);
    let size = 0;
    let n = 0;
    try {
      for await (const piece of body) {
        const bytes = piece as Buffer;
        digest.update(bytes);
        const frame = encodeFrame('B', { id, n: n++ }, bytes);
        const appended = this.commit.append(frame, false);
        chunks.push({ at: appended.at + HEADER + frame[1]!.length + frame[2]!.length, length: bytes.length });
        size += bytes.length;
        // Backpressure: a big body is written out as it streams in, not queued whole in memory.
        if (this.commit.queuedBytes > 4 * 1024 * 1024) await appended.done;
      }
      const record = newMessageRecord(id, message, headers, size, digest.digest('hex'));
      await this.commit.append(encodeFrame('M', record), true).done;
      this.messages.set(id, { record, chunks });
      this.queue.offer(record);
      return record;
    } finally {
      this.incoming.delete(id);
    }
  }

  async claimOne(owner: string): Promise<ClaimedJob | undefined> {
    return this.queue.claim(owner, (id) => this.messages.get(id)?.record);
  }

  async openBody(id: string): Promise<Readable> {
    const stored = this.messages.get(id);
    if (!stored) throw new Error(`message ${id} not found`);
    const handle = this.handle;
    async function* read(): AsyncGenerator<Buffer> {
      for (const chunk of stored!.chunks) {
        const buffer = Buffer.allocUnsafe(chunk.length);
        const { bytesRead } = await handle.read(buffer, 0, chunk.length, chunk.at);
        yield buffer.subarray(0, bytesRead);
      }
    }
    return verifiedBody(stored.record, read());
  }

  async appendEvidence(inputs: readonly EvidenceRecordInput[]): Promise<EvidenceRecord[]> {
    // Chained synchronously and appended in call order, so the chain on disk is in order.
    const records = chainEvidence(this.head, inputs, Date.now());
    const last = records[records.length - 1];
    if (last) this.head = { seq: last.seq, hash: last.hash };
    await this.commit.append(encodeFrame('E', records), true).done;
    return records;
  }

  async completeJob(jobId: string, owner: string, result: JobResult): Promise<JobRecord> {
    const { record, job } = this.queue.complete(jobId, owner, result, (id) => this.messages.get(id)?.record);
    await this.commit.append(encodeFrame('R', { id: record.id, job }), true).done;
    const stored = this.messages.get(record.id);
    if (stored) stored.record = record;
    this.queue.settled(jobId);
    return job;
  }

  getMessage(id: string): MessageRecord | undefined {
    return this.messages.get(id)?.record;
  }

  get evidenceHead(): { seq: number; hash: string } | undefined {
    return this.head;
  }

  get waiting(): number {
    return this.queue.waiting;
  }

  async close(): Promise<void> {
    await this.commit.idle();
    await this.handle.close();
  }
}
