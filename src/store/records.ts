import { arrivalOf, domainOf, fallbackIdOf, jobIdOf, parseJobId } from './ids';
import {
  FINAL_JOB_STATES,
  JOB_STATES,
  type FallbackFilter,
  type FallbackItem,
  type FallbackState,
  type HeaderFacts,
  type JobRecord,
  type JobResult,
  type JobScope,
  type JobState,
  type MessageFilter,
  type MessageRecord,
  type NewMessage,
  type RecipientRecord,
  type RecipientResult,
  type RecipientState,
  type StoreCounts,
  type WaitingJobs,
} from './types';

/*
 * Record logic shared by both backends, so the two apply exactly the same rules. Stored jobs are
 * never in state 'leased': a lease is kept beside the job and shown as state 'leased' while the
 * stored state is queued or deferred (see withLease). That way an admin hold during a delivery
 * attempt is kept, and an expired lease simply leaves the job in its stored state.
 */

export function newMessageRecord(id: string, message: NewMessage, headers: HeaderFacts, size: number, sha256?: string): MessageRecord {
  const byDomain = new Map<string, RecipientRecord[]>();
  for (const recipient of message.recipients) {
    const domain = domainOf(recipient.address);
    const list = byDomain.get(domain) ?? [];
    list.push({ ...recipient, state: 'pending', history: [] });
    byDomain.set(domain, list);
  }
  const at = message.receivedAt;
  const jobs: JobRecord[] = [...byDomain].map(([domain, recipients]) => ({
    id: jobIdOf(id, domain),
    messageId: id,
    domain,
    state: 'queued',
    recipients,
    dueAt: at,
    attempts: 0,
    createdAt: at,
    updatedAt: at,
  }));
  return { id, from: message.from, size, ...(sha256 !== undefined ? { sha256 } : {}), receivedAt: at, params: message.params, client: message.client, headers, jobs };
}

export function isFinal(state: JobState): boolean {
  return FINAL_JOB_STATES.has(state);
}

/** True when a stored job may be leased: waiting (queued or deferred), not held, not final. */
export function isClaimable(job: JobRecord): boolean {
  return job.state === 'queued' || job.state === 'deferred';
}

/**
 * A job whose recipients all ended differently takes the most significant state:
 * diverted > bounced > delivered. Diverted first because a portal item still needs the message;
 * bounced next because a sender must be told something failed.
 */
export function finalStateOf(states: readonly RecipientState[]): 'delivered' | 'diverted' | 'bounced' {
  if (states.includes('diverted')) return 'diverted';
  if (states.includes('bounced')) return 'bounced';
  return 'delivered';
}

/** The job as callers see it: 'leased' with the lease while the stored job waits and a lease is held. */
export function withLease(job: JobRecord, lease: { owner: string; expiresAt: number } | undefined): JobRecord {
  const { lease: _ignored, ...rest } = job;
  if (!lease || !isClaimable(job)) return rest;
  return { ...rest, state: 'leased', lease: { ...lease } };
}

/**
 * Applies one attempt's per-recipient results to a stored job. Deferred (and unmentioned) recipients stay
 * pending and the job waits until `retryAt` (now when absent). A job an admin held during the attempt
 * keeps its hold. Diverted recipients produce fallback items.
 */
export function applyJobResult(stored: JobRecord, message: Pick<MessageRecord, 'from' | 'headers'>, result: JobResult, now: number): { job: JobRecord; fallback: FallbackItem[] } {
  const recipients = stored.recipients.map((r) => ({ ...r, history: [...r.history] }));
  const byAddress = new Map(recipients.map((r) => [r.address, r]));
  for (const entry of result.recipients) {
    if (!byAddress.has(entry.address)) throw new Error(`recipient ${entry.address} is not part of job ${stored.id}`);
  }
  const attempt = stored.attempts + 1;
  const fallback: FallbackItem[] = [];
  for (const entry of result.recipients) {
    const recipient = byAddress.get(entry.address)!;
    if (recipient.state !== 'pending') continue;
    recipient.history.push({ ...entry.evidence, outcome: entry.outcome });
    if (entry.delayWarnedAt !== undefined && recipient.delayWarnedAt === undefined) recipient.delayWarnedAt = entry.delayWarnedAt;
    if (entry.outcome === 'deferred') continue;
    recipient.state = entry.outcome;
    if (entry.outcome === 'diverted') fallback.push(divertedItem(stored, message, recipient, entry, attempt, now));
  }
  const pending = recipients.some((r) => r.state === 'pending');
  const { lease: _lease, heldFrom: _heldFrom, ...base } = stored;
  const job: JobRecord = { ...base, recipients, attempts: attempt, updatedAt: now };
  const reasonFor = (outcome: string) => result.recipients.find((r) => r.outcome === outcome)?.evidence.reason;
  if (pending) {
    job.dueAt = result.retryAt ?? now;
    if (stored.state === 'held') {
      job.state = 'held';
      job.heldFrom = 'deferred';
    } else {
      job.state = 'deferred';
    }
    const reason = reasonFor('deferred') ?? result.recipients.at(-1)?.evidence.reason;
    if (reason !== undefined) job.lastReason = reason;
  } else {
    job.state = finalStateOf(recipients.map((r) => r.state));
    const reason = reasonFor(job.state) ?? result.recipients.at(-1)?.evidence.reason;
    if (reason !== undefined) job.lastReason = reason;
  }
  return { job, fallback };
}

/**
 * The fallback item of a recipient diverted in attempt `attempt`: ready for a portal, with the reason shown to
 * the portal and admins (the result's divertReason, else its evidence reason) and the recipient's evidence so
 * far. Its id is derived from job, recipient and attempt, so replaying the same attempt after a crash rewrites
 * the same item. Made here, not in src/fallback, because the store writes it in the same atomic step as the
 * job result; src/fallback owns the item from then on.
 */
export function divertedItem(
  job: Pick<JobRecord, 'id' | 'messageId' | 'domain'>,
  message: Pick<MessageRecord, 'from' | 'headers'>,
  recipient: RecipientRecord,
  result: RecipientResult,
  attempt: number,
  now: number,
): FallbackItem {
  return {
    id: fallbackIdOf(job.messageId, job.domain, recipient.address, attempt),
    queueId: job.messageId,
    jobId: job.id,
    ...(message.headers.messageId !== undefined ? { messageId: message.headers.messageId } : {}),
    from: message.from,
    recipient: recipient.address,
    reason: result.divertReason ?? result.evidence.reason,
    evidence: recipient.history.map((e) => ({ ...e })),
    divertedAt: now,
    state: 'ready',
  };
}

/** Admin hold: a waiting job stops being due; final and already held jobs are unchanged (returns undefined). */
export function holdJob(job: JobRecord, now: number): JobRecord | undefined {
  if (!isClaimable(job)) return undefined;
  return { ...job, state: 'held', heldFrom: job.state === 'deferred' ? 'deferred' : 'queued', updatedAt: now };
}

export function releaseJob(job: JobRecord, now: number): JobRecord | undefined {
  if (job.state !== 'held') return undefined;
  const { heldFrom, ...rest } = job;
  return { ...rest, state: heldFrom ?? 'queued', updatedAt: now };
}

/** Makes a non-final job due now; a held job stays held but will be due at once when released. */
export function retryJobNow(job: JobRecord, now: number): JobRecord | undefined {
  if (isFinal(job.state)) return undefined;
  return { ...job, dueAt: now, updatedAt: now };
}

/** Puts a diverted recipient back to pending; the job waits again (queued, due now) unless held. */
export function reopenRecipient(job: JobRecord, address: string, now: number): JobRecord {
  const recipients = job.recipients.map((r) => (r.address === address && r.state === 'diverted' ? { ...r, state: 'pending' as const } : r));
  const next: JobRecord = { ...job, recipients, dueAt: now, updatedAt: now };
  if (job.state !== 'held') next.state = 'queued';
  return next;
}

export function allJobsFinal(record: MessageRecord): boolean {
  return record.jobs.every((j) => isFinal(j.state));
}

/**
 * Whether the portal may still need a finished message's body: some fallback item is not yet
 * acknowledged and the body has not outlived its retention (counted from when the message finished).
 */
export function bodyNeededByFallback(itemStates: ReadonlyArray<string | undefined>, finished: number, now: number, retention: number): boolean {
  return itemStates.some((state) => state !== undefined && state !== 'acked') && now - finished < retention;
}

/** When the last job became final (epoch ms); retention counts from here. */
export function finishedAt(record: MessageRecord): number {
  return Math.max(record.receivedAt, ...record.jobs.map((j) => j.updatedAt));
}

export function matchesFilter(record: MessageRecord, filter: MessageFilter, now: number): boolean {
  if (record.deletedAt !== undefined && !filter.includeDeleted) return false;
  if (filter.recipient !== undefined) {
    const wanted = filter.recipient.toLowerCase();
    if (!record.jobs.some((j) => j.recipients.some((r) => r.address.toLowerCase() === wanted))) return false;
  }
  if (filter.state !== undefined && !record.jobs.some((j) => j.state === filter.state)) return false;
  if (filter.domain !== undefined && !record.jobs.some((j) => j.domain === filter.domain!.toLowerCase())) return false;
  if (filter.sender !== undefined && record.from.toLowerCase() !== filter.sender.toLowerCase()) return false;
  if (filter.olderThan !== undefined && now - record.receivedAt < filter.olderThan) return false;
  return true;
}

export function matchesFallbackFilter(item: FallbackItem, filter: FallbackFilter): boolean {
  if (filter.state !== undefined && item.state !== filter.state) return false;
  if (filter.since !== undefined && item.divertedAt < filter.since) return false;
  const recipient = item.recipient.toLowerCase();
  if (filter.recipient !== undefined && recipient !== filter.recipient.toLowerCase()) return false;
  if (filter.domain !== undefined && domainOf(recipient) !== filter.domain.toLowerCase()) return false;
  return true;
}

/** Whether an admin action with this scope touches the job (every job when the scope names no domain). */
export function jobInScope(job: Pick<JobRecord, 'domain'>, scope: JobScope | undefined): boolean {
  return scope?.domain === undefined || job.domain === scope.domain.toLowerCase();
}

/**
 * What an admin delete keeps of a message: the recipients that reached a final state, with their evidence, in
 * jobs that are final (a job keeps only its final recipients and takes their state); the body and pending
 * recipients go. Undefined when no recipient is final: then nothing is worth keeping and the message goes whole.
 */
export function evidenceOnly(record: MessageRecord, now: number): MessageRecord | undefined {
  const jobs: JobRecord[] = [];
  for (const job of record.jobs) {
    const recipients = job.recipients.filter((r) => r.state !== 'pending');
    if (recipients.length === 0) continue;
    const { lease: _lease, heldFrom: _heldFrom, ...rest } = job;
    jobs.push(isFinal(job.state) ? rest : { ...rest, recipients, state: finalStateOf(recipients.map((r) => r.state)), updatedAt: now });
  }
  if (jobs.length === 0) return undefined;
  return { ...record, jobs, bodyRemoved: true, deletedAt: now };
}

export function page<T>(items: T[], filter: { limit?: number; offset?: number }): T[] {
  const offset = filter.offset ?? 0;
  return filter.limit === undefined ? items.slice(offset) : items.slice(offset, offset + filter.limit);
}

export function emptyCounts(): StoreCounts {
  const jobs = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
  const fallback: Record<FallbackState, number> = { ready: 0, claimed: 0, acked: 0 };
  return { jobs, fallback, messages: 0, quarantined: 0 };
}

/** Sums waiting job ids (`<messageId>/<domain>`) by domain and finds the oldest arrival; ids that do not parse are skipped. */
export function summariseWaiting(jobIds: Iterable<string>): WaitingJobs {
  const summary: WaitingJobs = { total: 0, oldestArrival: null, byDomain: {} };
  const byDomain = new Map<string, number>();
  for (const jobId of jobIds) {
    const parsed = parseJobId(jobId);
    const arrival = parsed && arrivalOf(parsed.messageId);
    if (!parsed || arrival === undefined) continue;
    summary.total++;
    byDomain.set(parsed.domain, (byDomain.get(parsed.domain) ?? 0) + 1);
    if (summary.oldestArrival === null || arrival < summary.oldestArrival) summary.oldestArrival = arrival;
  }
  summary.byDomain = Object.fromEntries(byDomain);
  return summary;
}
