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
} from '../types';
import { RedisQueueAdmin } from './admin';
import { RedisCache } from './cache';
import { RedisCore, type RedisStoreOptions } from './core';
import { RedisFallbackStore } from './fallback';
import { RedisPortalStore } from './portal';
import { RedisJobQueue } from './queue';
import { RedisRetention } from './retention';
import { RedisEvidenceLog } from './evidence';
import { RedisTlsRptCounters } from './tlsrpt';

export type { RedisStoreOptions } from './core';

/**
 * Redis backend, for several relay instances sharing one queue: every role (queue.ts, admin.ts, fallback.ts, portal.ts,
 * cache.ts, retention.ts) over one shared core (core.ts). Every multi-key change is one Lua script
 * (scripts.ts) or one MULTI; job records change by compare-and-set so concurrent writers retry instead of
 * overwriting each other. Leases are kept beside the jobs (leases zset + owners hash).
 * Each method runs through core.guard, which reports a lost connection as StoreUnavailableError.
 */
export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  private readonly core: RedisCore;
  private readonly queue: RedisJobQueue;
  private readonly admin: RedisQueueAdmin;
  private readonly fallback: RedisFallbackStore;
  private readonly portal: RedisPortalStore;
  private readonly cache: RedisCache;
  private readonly retention: RedisRetention;
  private readonly tlsrpt: RedisTlsRptCounters;
  private readonly evidence: RedisEvidenceLog;

  constructor(options: RedisStoreOptions) {
    this.core = new RedisCore(options);
    this.admin = new RedisQueueAdmin(this.core);
    this.queue = new RedisJobQueue(this.core, (id) => this.admin.getMessage(id));
    this.fallback = new RedisFallbackStore(this.core);
    this.portal = new RedisPortalStore(this.core);
    this.cache = new RedisCache(this.core);
    this.retention = new RedisRetention(this.core);
    this.tlsrpt = new RedisTlsRptCounters(this.core);
    this.evidence = new RedisEvidenceLog(this.core);
  }

  open(): Promise<void> {
    return this.core.guard(() => this.core.open());
  }
  close(): Promise<void> {
    return this.core.close();
  }
  ping(): Promise<void> {
    return this.core.guard(() => this.core.ping());
  }

  enqueue(message: NewMessage, body: Readable, headers?: HeaderFacts, options?: EnqueueOptions): Promise<MessageRecord> {
    return this.core.guard(() => this.queue.enqueue(message, body, headers, options));
  }
  openBody(id: string): Promise<Readable> {
    return this.core.guard(() => this.queue.openBody(id));
  }
  claimDue(owner: string, limit: number, leaseMs: number, now?: number): Promise<ClaimedJob[]> {
    return this.core.guard(() => this.queue.claimDue(owner, limit, leaseMs, now));
  }
  renewLease(jobId: string, owner: string, leaseMs: number): Promise<void> {
    return this.core.guard(() => this.queue.renewLease(jobId, owner, leaseMs));
  }
  releaseLease(jobId: string, owner: string): Promise<void> {
    return this.core.guard(() => this.queue.releaseLease(jobId, owner));
  }
  completeJob(jobId: string, owner: string, result: JobResult): Promise<JobRecord> {
    return this.core.guard(() => this.queue.completeJob(jobId, owner, result));
  }

  getMessage(id: string): Promise<MessageRecord | undefined> {
    return this.core.guard(() => this.admin.getMessage(id));
  }
  listMessages(filter?: MessageFilter): Promise<MessageRecord[]> {
    return this.core.guard(() => this.admin.listMessages(filter));
  }
  hold(messageId: string, scope?: JobScope): Promise<MessageRecord> {
    return this.core.guard(() => this.admin.hold(messageId, scope));
  }
  release(messageId: string, scope?: JobScope): Promise<MessageRecord> {
    return this.core.guard(() => this.admin.release(messageId, scope));
  }
  retryNow(messageId: string, scope?: JobScope): Promise<MessageRecord> {
    return this.core.guard(() => this.admin.retryNow(messageId, scope));
  }
  deleteMessage(messageId: string): Promise<void> {
    return this.core.guard(() => this.admin.deleteMessage(messageId));
  }
  counts(): Promise<StoreCounts> {
    return this.core.guard(() => this.admin.counts());
  }
  waitingJobs(): Promise<WaitingJobs> {
    return this.core.guard(() => this.admin.waitingJobs());
  }

  listFallback(filter?: FallbackFilter): Promise<FallbackItem[]> {
    return this.core.guard(() => this.fallback.listFallback(filter));
  }
  getFallback(id: string): Promise<FallbackItem | undefined> {
    return this.core.guard(() => this.fallback.getFallback(id));
  }
  claimFallback(owner: string, limit: number, leaseMs: number, now?: number): Promise<FallbackItem[]> {
    return this.core.guard(() => this.fallback.claimFallback(owner, limit, leaseMs, now));
  }
  ackFallback(id: string, owner: string): Promise<void> {
    return this.core.guard(() => this.fallback.ackFallback(id, owner));
  }
  releaseFallback(id: string): Promise<void> {
    return this.core.guard(() => this.fallback.releaseFallback(id));
  }
  deleteFallback(id: string): Promise<void> {
    return this.core.guard(() => this.fallback.deleteFallback(id));
  }

  putPortalCopy(item: PortalItem, ciphertext: Readable): Promise<void> {
    return this.core.guard(() => this.portal.putPortalCopy(item, ciphertext));
  }
  getPortalItem(id: string): Promise<PortalItem | undefined> {
    return this.core.guard(() => this.portal.getPortalItem(id));
  }
  findPortalItemByToken(tokenHash: string): Promise<PortalItem | undefined> {
    return this.core.guard(() => this.portal.findPortalItemByToken(tokenHash));
  }
  listPortalItems(filter?: PortalFilter): Promise<PortalItem[]> {
    return this.core.guard(() => this.portal.listPortalItems(filter));
  }
  updatePortalItem(id: string, mutate: (item: PortalItem) => PortalItem): Promise<PortalItem> {
    return this.core.guard(() => this.portal.updatePortalItem(id, mutate));
  }
  openPortalCiphertext(id: string): Promise<Readable> {
    return this.core.guard(() => this.portal.openPortalCiphertext(id));
  }
  shredPortalCopy(id: string): Promise<void> {
    return this.core.guard(() => this.portal.shredPortalCopy(id));
  }
  appendPortalEvent(itemId: string, event: PortalEventInput): Promise<PortalEvent> {
    return this.core.guard(() => this.portal.appendPortalEvent(itemId, event));
  }
  portalEvents(itemId: string): Promise<PortalEvent[]> {
    return this.core.guard(() => this.portal.portalEvents(itemId));
  }

  cacheGet(namespace: string, key: string): Promise<string | undefined> {
    return this.core.guard(() => this.cache.cacheGet(namespace, key));
  }
  cacheSet(namespace: string, key: string, value: string, ttlMs: number): Promise<void> {
    return this.core.guard(() => this.cache.cacheSet(namespace, key, value, ttlMs));
  }
  cacheDelete(namespace: string, key: string): Promise<void> {
    return this.core.guard(() => this.cache.cacheDelete(namespace, key));
  }
  cacheIncrement(namespace: string, key: string, ttlMs: number): Promise<number> {
    return this.core.guard(() => this.cache.cacheIncrement(namespace, key, ttlMs));
  }

  quarantineMessage(messageId: string, kind: QuarantineKind, reason: string, jobId?: string): Promise<void> {
    return this.core.guard(() => this.core.quarantine(messageId, kind, kind === 'result' ? 'result-unrecorded' : 'invalid-record', reason, jobId));
  }
  listQuarantined(): Promise<QuarantineEntry[]> {
    return this.core.guard(() => this.core.listQuarantined());
  }
  purgeQuarantined(before: number): Promise<QuarantineEntry[]> {
    return this.core.guard(() => this.core.purgeQuarantined(before));
  }

  sweep(now?: number): Promise<number> {
    return this.core.guard(() => this.retention.sweep(now));
  }

  tlsRptCount(day: string, domain: string, policy: string, detail: string | null, count?: number): Promise<void> {
    return this.core.guard(() => this.tlsrpt.tlsRptCount(day, domain, policy, detail, count));
  }
  tlsRptDomains(day: string): Promise<string[]> {
    return this.core.guard(() => this.tlsrpt.tlsRptDomains(day));
  }
  tlsRptRead(domain: string, day: string): Promise<TlsRptTally[]> {
    return this.core.guard(() => this.tlsrpt.tlsRptRead(domain, day));
  }
  tlsRptPrune(before: string): Promise<number> {
    return this.core.guard(() => this.tlsrpt.tlsRptPrune(before));
  }
  appendEvidence(records: readonly EvidenceRecordInput[]): Promise<EvidenceRecord[]> {
    return this.core.guard(() => this.evidence.appendEvidence(records));
  }
  queryEvidence(query: EvidenceQuery): AsyncIterable<EvidenceRecord> {
    return this.evidence.queryEvidence(query);
  }
  evidenceDays(): Promise<string[]> {
    return this.core.guard(() => this.evidence.evidenceDays());
  }
  readEvidenceDay(day: string): Promise<string[]> {
    return this.core.guard(() => this.evidence.readEvidenceDay(day));
  }
  evidenceAnchors(): Promise<EvidenceAnchor[]> {
    return this.core.guard(() => this.evidence.evidenceAnchors());
  }
  evidenceBase(): Promise<EvidenceBase | null> {
    return this.core.guard(() => this.evidence.evidenceBase());
  }
  evidenceHead(): Promise<EvidenceRecord | undefined> {
    return this.core.guard(() => this.evidence.evidenceHead());
  }
  sealEvidence(now?: number): Promise<EvidenceAnchor[]> {
    return this.core.guard(() => this.evidence.sealEvidence(now));
  }
  pruneEvidence(beforeDay: string): Promise<EvidencePruneResult> {
    return this.core.guard(() => this.evidence.pruneEvidence(beforeDay));
  }
}
