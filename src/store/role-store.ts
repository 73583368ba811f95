import type { Readable } from 'node:stream';
import type {
  ClaimedJob,
  EvidenceAnchor,
  EvidenceBase,
  EvidencePruneResult,
  EvidenceQuery,
  EvidenceRecord,
  EvidenceRecordInput,
  FallbackFilter,
  FallbackItem,
  EnqueueOptions,
  HeaderFacts,
  JobRecord,
  JobResult,
  JobScope,
  MessageFilter,
  MessageRecord,
  NewMessage,
  PortalEvent,
  PortalEventInput,
  PortalFilter,
  PortalItem,
  QuarantineEntry,
  QuarantineKind,
  Store,
  StoreCounts,
  TlsRptTally,
  WaitingJobs,
} from './types';
import type { EvidenceLog, FallbackStore, JobQueue, KeyValueCache, PortalStore, QuarantineStore, QueueAdmin, Retention, TlsRptCounters } from './roles';

/** The roles a backend is made of, each implemented by its own object. */
export interface StoreParts {
  queue: JobQueue;
  admin: QueueAdmin;
  fallback: FallbackStore;
  portal: PortalStore;
  cache: KeyValueCache;
  retention: Retention;
  quarantine: QuarantineStore;
  tlsrpt: TlsRptCounters;
  evidence: EvidenceLog;
}

/**
 * A Store that hands every call to the role that implements it (`parts`); a backend adds only its lifecycle
 * (open, close, ping) and whatever its parts share. The embedded backends (file, lmdb) are built this way.
 */
export abstract class RoleStore<P extends StoreParts = StoreParts> implements Store {
  abstract readonly kind: Store['kind'];

  constructor(protected readonly parts: P) {}

  abstract open(): Promise<void>;
  abstract close(): Promise<void>;
  abstract ping(): Promise<void>;

  enqueue(message: NewMessage, body: Readable, headers?: HeaderFacts, options?: EnqueueOptions): Promise<MessageRecord> {
    return this.parts.queue.enqueue(message, body, headers, options);
  }
  openBody(id: string): Promise<Readable> {
    return this.parts.queue.openBody(id);
  }
  claimDue(owner: string, limit: number, leaseMs: number, now?: number): Promise<ClaimedJob[]> {
    return this.parts.queue.claimDue(owner, limit, leaseMs, now);
  }
  renewLease(jobId: string, owner: string, leaseMs: number): Promise<void> {
    return this.parts.queue.renewLease(jobId, owner, leaseMs);
  }
  releaseLease(jobId: string, owner: string): Promise<void> {
    return this.parts.queue.releaseLease(jobId, owner);
  }
  completeJob(jobId: string, owner: string, result: JobResult): Promise<JobRecord> {
    return this.parts.queue.completeJob(jobId, owner, result);
  }

  getMessage(id: string): Promise<MessageRecord | undefined> {
    return this.parts.admin.getMessage(id);
  }
  listMessages(filter?: MessageFilter): Promise<MessageRecord[]> {
    return this.parts.admin.listMessages(filter);
  }
  hold(messageId: string, scope?: JobScope): Promise<MessageRecord> {
    return this.parts.admin.hold(messageId, scope);
  }
  release(messageId: string, scope?: JobScope): Promise<MessageRecord> {
    return this.parts.admin.release(messageId, scope);
  }
  retryNow(messageId: string, scope?: JobScope): Promise<MessageRecord> {
    return this.parts.admin.retryNow(messageId, scope);
  }
  deleteMessage(messageId: string): Promise<void> {
    return this.parts.admin.deleteMessage(messageId);
  }
  counts(): Promise<StoreCounts> {
    return this.parts.admin.counts();
  }
  waitingJobs(): Promise<WaitingJobs> {
    return this.parts.admin.waitingJobs();
  }

  listFallback(filter?: FallbackFilter): Promise<FallbackItem[]> {
    return this.parts.fallback.listFallback(filter);
  }
  getFallback(id: string): Promise<FallbackItem | undefined> {
    return this.parts.fallback.getFallback(id);
  }
  claimFallback(owner: string, limit: number, leaseMs: number, now?: number): Promise<FallbackItem[]> {
    return this.parts.fallback.claimFallback(owner, limit, leaseMs, now);
  }
  ackFallback(id: string, owner: string): Promise<void> {
    return this.parts.fallback.ackFallback(id, owner);
  }
  releaseFallback(id: string): Promise<void> {
    return this.parts.fallback.releaseFallback(id);
  }
  deleteFallback(id: string): Promise<void> {
    return this.parts.fallback.deleteFallback(id);
  }

  putPortalCopy(item: PortalItem, ciphertext: Readable): Promise<void> {
    return this.parts.portal.putPortalCopy(item, ciphertext);
  }
  getPortalItem(id: string): Promise<PortalItem | undefined> {
    return this.parts.portal.getPortalItem(id);
  }
  findPortalItemByToken(tokenHash: string): Promise<PortalItem | undefined> {
    return this.parts.portal.findPortalItemByToken(tokenHash);
  }
  listPortalItems(filter?: PortalFilter): Promise<PortalItem[]> {
    return this.parts.portal.listPortalItems(filter);
  }
  updatePortalItem(id: string, mutate: (item: PortalItem) => PortalItem): Promise<PortalItem> {
    return this.parts.portal.updatePortalItem(id, mutate);
  }
  openPortalCiphertext(id: string): Promise<Readable> {
    return this.parts.portal.openPortalCiphertext(id);
  }
  shredPortalCopy(id: string): Promise<void> {
    return this.parts.portal.shredPortalCopy(id);
  }
  appendPortalEvent(itemId: string, event: PortalEventInput): Promise<PortalEvent> {
    return this.parts.portal.appendPortalEvent(itemId, event);
  }
  portalEvents(itemId: string): Promise<PortalEvent[]> {
    return this.parts.portal.portalEvents(itemId);
  }

  cacheGet(namespace: string, key: string): Promise<string | undefined> {
    return this.parts.cache.cacheGet(namespace, key);
  }
  cacheSet(namespace: string, key: string, value: string, ttlMs: number): Promise<void> {
    return this.parts.cache.cacheSet(namespace, key, value, ttlMs);
  }
  cacheDelete(namespace: string, key: string): Promise<void> {
    return this.parts.cache.cacheDelete(namespace, key);
  }
  cacheIncrement(namespace: string, key: string, ttlMs: number): Promise<number> {
    return this.parts.cache.cacheIncrement(namespace, key, ttlMs);
  }

  quarantineMessage(messageId: string, kind: QuarantineKind, reason: string, jobId?: string): Promise<void> {
    return this.parts.quarantine.quarantineMessage(messageId, kind, reason, jobId);
  }
  listQuarantined(): Promise<QuarantineEntry[]> {
    return this.parts.quarantine.listQuarantined();
  }
  purgeQuarantined(before: number): Promise<QuarantineEntry[]> {
    return this.parts.quarantine.purgeQuarantined(before);
  }

  sweep(now?: number): Promise<number> {
    return this.parts.retention.sweep(now);
  }

  tlsRptCount(day: string, domain: string, policy: string, detail: string | null, count?: number): Promise<void> {
    return this.parts.tlsrpt.tlsRptCount(day, domain, policy, detail, count);
  }
  tlsRptDomains(day: string): Promise<string[]> {
    return this.parts.tlsrpt.tlsRptDomains(day);
  }
  tlsRptRead(domain: string, day: string): Promise<TlsRptTally[]> {
    return this.parts.tlsrpt.tlsRptRead(domain, day);
  }
  tlsRptPrune(before: string): Promise<number> {
    return this.parts.tlsrpt.tlsRptPrune(before);
  }
  appendEvidence(records: readonly EvidenceRecordInput[]): Promise<EvidenceRecord[]> {
    return this.parts.evidence.appendEvidence(records);
  }
  queryEvidence(query: EvidenceQuery): AsyncIterable<EvidenceRecord> {
    return this.parts.evidence.queryEvidence(query);
  }
  evidenceDays(): Promise<string[]> {
    return this.parts.evidence.evidenceDays();
  }
  readEvidenceDay(day: string): Promise<string[]> {
    return this.parts.evidence.readEvidenceDay(day);
  }
  evidenceAnchors(): Promise<EvidenceAnchor[]> {
    return this.parts.evidence.evidenceAnchors();
  }
  evidenceBase(): Promise<EvidenceBase | null> {
    return this.parts.evidence.evidenceBase();
  }
  evidenceHead(): Promise<EvidenceRecord | undefined> {
    return this.parts.evidence.evidenceHead();
  }
  sealEvidence(now?: number): Promise<EvidenceAnchor[]> {
    return this.parts.evidence.sealEvidence(now);
  }
  pruneEvidence(beforeDay: string): Promise<EvidencePruneResult> {
    return this.parts.evidence.pruneEvidence(beforeDay);
  }
}
