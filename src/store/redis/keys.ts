/**
 * Every Redis key the store uses, built in one place under the configured prefix (like BullMQ's QueueKeys).
 * Ids never make two keys collide: message ids are base32 and job ids are `<messageId>/<domain>`.
 *
 * On a Redis Cluster (`cluster` true) every queue key starts with the prefix as a hash tag, `{<prefix>}:msg:<id>`,
 * so all of them sit in one slot and every script and MULTI over them runs on one node; the evidence keys keep
 * their own tag (below), a second slot. On a single Redis the names stay exactly `<prefix>:msg:<id>`, as before.
 */
export class RedisKeys {
  /** What every queue key starts with: the prefix, or `{<prefix>}` on a cluster. */
  readonly head: string;

  constructor(
    readonly prefix: string,
    readonly cluster = false,
  ) {
    this.head = cluster ? `{${prefix}}` : prefix;
  }

  private key(...parts: string[]): string {
    return [this.head, ...parts].join(':');
  }

  /** Message record without its jobs, plus the job ids (JSON string). */
  message(id: string): string {
    return this.key('msg', id);
  }
  body(id: string): string {
    return this.key('body', id);
  }
  /** Body being streamed in; renamed to body() in the enqueue commit, expires if the writer dies. */
  bodyUpload(id: string): string {
    return this.key('upload', id);
  }
  /** Job record as stored (never in state 'leased'), JSON string. */
  job(jobId: string): string {
    return this.key('job', jobId);
  }
  /** Sorted set: message id by receivedAt. */
  messages(): string {
    return this.key('messages');
  }
  /** Hash: job id -> stored state, so scripts can check a state without decoding JSON. */
  jobStates(): string {
    return this.key('jobstates');
  }
  /** Sorted set: id of each message whose jobs are all final, by when that happened (sweep's work list). */
  finished(): string {
    return this.key('finished');
  }
  /** Sorted set: waiting (queued/deferred, unleased) job id by dueAt. */
  due(): string {
    return this.key('due');
  }
  /** Sorted set: leased job id by lease expiry. */
  leases(): string {
    return this.key('leases');
  }
  /** Hash: job id -> lease owner. */
  leaseOwners(): string {
    return this.key('leaseowners');
  }
  /** Fallback item without its claim state, JSON string. */
  fallback(id: string): string {
    return this.key('fb', id);
  }
  /** Hash: fallback item id -> "state\towner\texpiresAt\tackedAt" (the part that changes; see scripts.ts). */
  fallbackStates(): string {
    return this.key('fbstates');
  }
  /** Sorted set: every fallback item id by divertedAt. */
  fallbackAll(): string {
    return this.key('fball');
  }
  /** Sorted set: ready fallback item id by divertedAt. */
  fallbackReady(): string {
    return this.key('fbready');
  }
  /** Sorted set: claimed fallback item id by claim expiry. */
  fallbackClaims(): string {
    return this.key('fbclaims');
  }
  /** Set: fallback item ids of one message. */
  messageFallback(messageId: string): string {
    return this.key('msgfb', messageId);
  }
  /** Portal copy record (PortalItem JSON). Portal ids never contain ':'. */
  portalItem(id: string): string {
    return this.key('portal', id);
  }
  /** The copy's ciphertext. */
  portalBlob(id: string): string {
    return this.key('portalblob', id);
  }
  /** Ciphertext being streamed in by one writer; renamed to portalBlob() on commit, expires if the writer dies. */
  portalUpload(id: string, nonce: string): string {
    return this.key('portalupload', id, nonce);
  }
  /** List: the item's hash-chained events, oldest first. */
  portalEvents(id: string): string {
    return this.key('portalev', id);
  }
  /** Sorted set: every portal item id by createdAt. */
  portalAll(): string {
    return this.key('portalall');
  }
  /** Hash: live token hash -> portal item id. */
  portalTokens(): string {
    return this.key('portaltokens');
  }
  /** Hash: portal item id -> its live token hash (so scripts can drop the old entry without decoding JSON). */
  portalItemTokens(): string {
    return this.key('portalitemtokens');
  }
  /** Hash: id of a quarantined entry (message or fallback item) -> QuarantineEntry JSON. */
  quarantine(): string {
    return this.key('quarantine');
  }
  /** Where a quarantined key's value is kept until purged: the original key under `q:` (e.g. prefix:q:msg:<id>). */
  quarantined(key: string): string {
    return this.key('q', key.slice(this.head.length + 1));
  }
  cache(namespace: string, key: string): string {
    // Length-prefixed so ("a:b", "c") and ("a", "b:c") never share a key.
    return this.key('cache', String(namespace.length), namespace, key);
  }
  /** Hash: TLS-RPT counters of one domain on one day, field `s\t<policy>` (successes) or `f\t<policy>\t<detail>`. */
  tlsRptCounters(day: string, domain: string): string {
    return this.key('tlsrpt', day, domain);
  }
  /** Set: the domains with counters on one day. */
  tlsRptDomains(day: string): string {
    return this.key('tlsrptdomains', day);
  }
  /** Set: the days that have counters (what prune walks). */
  tlsRptDays(): string {
    return this.key('tlsrptdays');
  }
  /**
   * Every evidence key carries the same hash tag, so one script may touch them all (they share a slot on a
   * Redis Cluster). Layout: `<prefix>:evidence:{<prefix>-evidence}:<part>`.
   */
  private evidenceKey(...parts: string[]): string {
    // Built on the bare prefix in both modes: on a cluster the tag is then this one, not the queue keys' `{<prefix>}`.
    return [this.prefix, 'evidence', `{${this.prefix}-evidence}`, ...parts].join(':');
  }
  /** String: the newest evidence record as stored (JSON); appends compare-and-set on it. */
  evidenceHead(): string {
    return this.evidenceKey('head');
  }
  /** String: the newest anchor (JSON), kept after its day is pruned so the next anchor can link to it. */
  evidenceLastAnchor(): string {
    return this.evidenceKey('lastanchor');
  }
  /** Hash: day (YYYY-MM-DD) -> that day's anchor (JSON). */
  evidenceAnchors(): string {
    return this.evidenceKey('anchors');
  }
  /** String: the prune base (EvidenceBase JSON); absent until a prune. */
  evidenceBase(): string {
    return this.evidenceKey('base');
  }
  /** Sorted set: every day with records, scored by the sequence number of its first record. */
  evidenceDays(): string {
    return this.evidenceKey('days');
  }
  /** List: one day's records (JSON lines), in chain order. */
  evidenceDay(day: string): string {
    return this.evidenceKey('day', day);
  }
  /** Set: the index keys a day's records were added to, so prune can take the day's members out of each. */
  evidenceDayIndexes(day: string): string {
    return this.evidenceKey('dayix', day);
  }
  /** Hash: day -> "<min at>\t<max at>" of its records: the score range prune searches in each index key. */
  evidenceSpans(): string {
    return this.evidenceKey('spans');
  }
  /** Set: pruned days whose index members are still being removed (a prune that stopped half way resumes). */
  evidencePruning(): string {
    return this.evidenceKey('pruning');
  }
  /**
   * Sorted set: the records with one id, members `<day>:<position in the day's list>`, scored by `at`.
   * Kinds: q (queue id), m (Message-ID), r (recipient, lower-cased), d (recipient domain, lower-cased).
   */
  evidenceIndex(kind: 'q' | 'm' | 'r' | 'd', value: string): string {
    return this.evidenceKey('ix', kind, value);
  }
  /** Pattern matching every key of this store (tests, cleanup); on a cluster, the queue keys' only (one slot). */
  all(): string {
    return `${this.head}:*`;
  }
}
