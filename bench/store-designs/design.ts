import type { Readable } from 'node:stream';
import type { ClaimedJob, EvidenceRecordInput, HeaderFacts, JobResult, MessageRecord, NewMessage, Store } from '../../src/store/types';

/**
 * The part of a store the relay's hot path uses for one message, in the order it uses it: enqueue (the `250` waits
 * for it), claim, open the body to send it, append the outcome's evidence, record the result. The real stores
 * (Store) and the measurement prototypes (lmdb-spool.ts, journal-spool.ts) are each driven through this.
 */
export interface HotPathStore {
  enqueue(message: NewMessage, body: Readable, headers: HeaderFacts): Promise<MessageRecord>;
  /** One due job leased to `owner`, or undefined when none is due now. */
  claimOne(owner: string): Promise<ClaimedJob | undefined>;
  openBody(id: string): Promise<Readable>;
  appendEvidence(records: readonly EvidenceRecordInput[]): Promise<unknown>;
  completeJob(jobId: string, owner: string, result: JobResult): Promise<unknown>;
  close(): Promise<void>;
  /** fdatasync calls so far, where the design counts its own. */
  syncs?(): number;
}

export interface StoreDesign {
  name: string;
  /** One line on what the row measures (durability setting, prototype or product code). */
  note: string;
  open(): Promise<HotPathStore>;
  /** CPU seconds of a store server process (Redis), read before and after the run; absent for in-process stores. */
  serverCpuSeconds?(): Promise<number>;
  /** Stops what open() started and removes the design's files. */
  dispose(): Promise<void>;
}

const LEASE_MS = 120_000;

/** A real Store (file or Redis) as the hot path calls it: claimDue with one free slot, the relay's default lease. */
export function storeHotPath(store: Store): HotPathStore {
  return {
    enqueue: (message, body, headers) => store.enqueue(message, body, headers),
    claimOne: async (owner) => (await store.claimDue(owner, 1, LEASE_MS))[0],
    openBody: (id) => store.openBody(id),
    appendEvidence: (records) => store.appendEvidence(records),
    completeJob: (jobId, owner, result) => store.completeJob(jobId, owner, result),
    close: () => store.close(),
  };
}
