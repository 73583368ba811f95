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
import { FileCache } from '../file/cache';
import { FileEvidenceLog } from '../file/evidence';
import { FilePortalStore } from '../file/portal';
import { FileTlsRptCounters } from '../file/tlsrpt';
import { LmdbQueueAdmin } from './admin';
import { LmdbFallbackStore } from './fallback';
import { LmdbJobQueue } from './queue';
import { LmdbRetention } from './retention';
import { hasFileSpool, migrateFileSpool } from './migrate-file-spool';
import { LmdbSpool, type LmdbStoreOptions } from './spool';

export type { LmdbStoreOptions } from './spool';

/**
 * The embedded backend on LMDB: queue, admin, fallback, retention and quarantine over one LMDB environment
 * (spool.ts, env.ts) in `<queue.path>/lmdb/`; portal copies, cache and TLS-RPT counters are the file store's,
 * over the same spool folder; the evidence log is the file store's, at evidence.path. This class only hands
 * each call to the role that implements it.
 */
export class LmdbStore implements Store {
  readonly kind = 'lmdb' as const;
  private readonly spool: LmdbSpool;
  private readonly queue: LmdbJobQueue;
  private readonly admin: LmdbQueueAdmin;
  private readonly fallback: LmdbFallbackStore;
  private readonly portal: FilePortalStore;
  private readonly cache: FileCache;
  private readonly retention: LmdbRetention;
  private readonly tlsrpt: FileTlsRptCounters;
  private readonly evidence: FileEvidenceLog;

  constructor(private readonly options: LmdbStoreOptions) {
    this.spool = new LmdbSpool(options);
    this.queue = new LmdbJobQueue(this.spool);
    this.admin = new LmdbQueueAdmin(this.spool);
    this.fallback = new LmdbFallbackStore(this.spool);
    this.portal = new FilePortalStore(this.spool.layout);
    this.cache = new FileCache(this.spool.layout);
    this.retention = new LmdbRetention(this.spool);
    this.tlsrpt = new FileTlsRptCounters(this.spool.layout);
    this.evidence = new FileEvidenceLog(options);
  }

  /**
   * Opens the environment; when this process may clean (the relay, or any process while no relay runs) and the
   * folder still holds a file spool (the embedded store before lmdb), its messages are moved in first.
   */
  async open(): Promise<void> {
    await this.spool.open();
    if (!this.spool.mayClean || !(await hasFileSpool(this.options.path))) return;
    const moved = await migrateFileSpool(this.options, this.queue);
    this.spool.logger.info({ event: 'file-spool-migrated', ...moved }, 'messages of the file spool moved into the lmdb store');
  }
  async close(): Promise<void> {
    await this.spool.close();
    await this.evidence.close();
  }
  ping(): Promise<void> {
    return this.spool.ping();
  }

  enqueue(message: NewMessage, body: Readable, headers?: HeaderFacts, options?: EnqueueOptions): Promise<MessageRecord> {
    return this.queue.enqueue(message, body, headers, options);
  }
  openBody(id: string): Promise<Readable> {
    return this.queue.openBody(id);
  }
  claimDue(owner: string, limit: number, leaseMs: number, now?: number): Promise<ClaimedJob[]> {
    return this.queue.claimDue(owner, limit, leaseMs, now);
  }
  renewLease(jobId: string, owner: string, leaseMs: number): Promise<void> {
    return this.queue.renewLease(jobId, owner, leaseMs);
  }
  releaseLease(jobId: string, owner: string): Promise<void> {
    return this.queue.releaseLease(jobId, owner);
  }
  completeJob(jobId: string, owner: string, result: JobResult): Promise<JobRecord> {
    return this.queue.completeJob(jobId, owner, result);
  }

  getMessage(id: string): Promise<MessageRecord | undefined> {
    return this.admin.getMessage(id);
  }
  listMessages(filter?: MessageFilter): Promise<MessageRecord[]> {
    return this.admin.listMessages(filter);
  }
  hold(messageId: string, scope?: JobScope): Promise<MessageRecord> {
    return this.admin.hold(messageId, scope);
  }
  release(messageId: string, scope?: JobScope): Promise<MessageRecord> {
    return this.admin.release(messageId, scope);
  }
  retryNow(messageId: string, scope?: JobScope): Promise<MessageRecord> {
    return this.admin.retryNow(messageId, scope);
  }
  deleteMessage(messageId: string): Promise<void> {
    return this.admin.deleteMessage(messageId);
  }
  counts(): Promise<StoreCounts> {
    return this.admin.counts();
  }
  waitingJobs(): Promise<WaitingJobs> {
    return this.admin.waitingJobs();
  }

  listFallback(filter?: FallbackFilter): Promise<FallbackItem[]> {
    return this.fallback.listFallback(filter);
  }
  getFallback(id: string): Promise<FallbackItem | undefined> {
    return this.fallback.getFallback(id);
  }
  claimFallback(owner: string, limit: number, leaseMs: number, now?: number): Promise<FallbackItem[]> {
    return this.fallback.claimFallback(owner, limit, leaseMs, now);
  }
  ackFallback(id: string, owner: string): Promise<void> {
    return this.fallback.ackFallback(id, owner);
  }
  releaseFallback(id: string): Promise<void> {
    return this.fallback.releaseFallback(id);
  }
  deleteFallback(id: string): Promise<void> {
    return this.fallback.deleteFallback(id);
  }

  putPortalCopy(item: PortalItem, ciphertext: Readable): Promise<void> {
    return this.portal.putPortalCopy(item, ciphertext);
  }
  getPortalItem(id: string): Promise<PortalItem | undefined> {
    return this.portal.getPortalItem(id);
  }
  findPortalItemByToken(tokenHash: string): Promise<PortalItem | undefined> {
    return this.portal.findPortalItemByToken(tokenHash);
  }
  listPortalItems(filter?: PortalFilter): Promise<PortalItem[]> {
    return this.portal.listPortalItems(filter);
  }
  updatePortalItem(id: string, mutate: (item: PortalItem) => PortalItem): Promise<PortalItem> {
    return this.portal.updatePortalItem(id, mutate);
  }
  openPortalCiphertext(id: string): Promise<Readable> {
    return this.portal.openPortalCiphertext(id);
  }
  shredPortalCopy(id: string): Promise<void> {
    return this.portal.shredPortalCopy(id);
  }
  appendPortalEvent(itemId: string, event: PortalEventInput): Promise<PortalEvent> {
    return this.portal.appendPortalEvent(itemId, event);
  }
  portalEvents(itemId: string): Promise<PortalEvent[]> {
    return this.portal.portalEvents(itemId);
  }

  cacheGet(namespace: string, key: string): Promise<string | undefined> {
    return this.cache.cacheGet(namespace, key);
  }
  cacheSet(namespace: string, key: string, value: string, ttlMs: number): Promise<void> {
    return this.cache.cacheSet(namespace, key, value, ttlMs);
  }
  cacheDelete(namespace: string, key: string): Promise<void> {
    return this.cache.cacheDelete(namespace, key);
  }
  cacheIncrement(namespace: string, key: string, ttlMs: number): Promise<number> {
    return this.cache.cacheIncrement(namespace, key, ttlMs);
  }

  quarantineMessage(messageId: string, kind: QuarantineKind, reason: string, jobId?: string): Promise<void> {
    return this.spool.quarantineMessage(messageId, kind, kind === 'result' ? 'result-unrecorded' : 'invalid-record', reason, jobId);
  }
  async listQuarantined(): Promise<QuarantineEntry[]> {
    return this.spool.quarantine.list();
  }
  purgeQuarantined(before: number): Promise<QuarantineEntry[]> {
    return this.spool.quarantine.purge(before);
  }

  sweep(now?: number): Promise<number> {
    return this.retention.sweep(now);
  }

  tlsRptCount(day: string, domain: string, policy: string, detail: string | null, count?: number): Promise<void> {
    return this.tlsrpt.tlsRptCount(day, domain, policy, detail, count);
  }
  tlsRptDomains(day: string): Promise<string[]> {
    return this.tlsrpt.tlsRptDomains(day);
  }
  tlsRptRead(domain: string, day: string): Promise<TlsRptTally[]> {
    return this.tlsrpt.tlsRptRead(domain, day);
  }
  tlsRptPrune(before: string): Promise<number> {
    return this.tlsrpt.tlsRptPrune(before);
  }
  appendEvidence(records: readonly EvidenceRecordInput[]): Promise<EvidenceRecord[]> {
    return this.evidence.appendEvidence(records);
  }
  queryEvidence(query: EvidenceQuery): AsyncIterable<EvidenceRecord> {
    return this.evidence.queryEvidence(query);
  }
  evidenceDays(): Promise<string[]> {
    return this.evidence.evidenceDays();
  }
  readEvidenceDay(day: string): Promise<string[]> {
    return this.evidence.readEvidenceDay(day);
  }
  evidenceAnchors(): Promise<EvidenceAnchor[]> {
    return this.evidence.evidenceAnchors();
  }
  evidenceBase(): Promise<EvidenceBase | null> {
    return this.evidence.evidenceBase();
  }
  evidenceHead(): Promise<EvidenceRecord | undefined> {
    return this.evidence.evidenceHead();
  }
  sealEvidence(now?: number): Promise<EvidenceAnchor[]> {
    return this.evidence.sealEvidence(now);
  }
  pruneEvidence(beforeDay: string): Promise<EvidencePruneResult> {
    return this.evidence.pruneEvidence(beforeDay);
  }
}
