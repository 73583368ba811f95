import { promises as fs } from 'node:fs';
import path from 'node:path';
import { chainEvidence, EVIDENCE_GENESIS, evidenceDay, parseEvidenceLine, pruneBase, recipientDomain, sealDay } from '../evidence-chain';
import { writeFileAtomic } from '../file/durable';
import type { EvidenceAnchor, EvidenceBase, EvidencePruneResult, EvidenceQuery, EvidenceRecord, EvidenceRecordInput } from '../model';
import { TLSRPT_DAY, type EvidenceLog } from '../roles';
import { StoreError } from '../types';
import type { RedisCore } from './core';

/** Compare-and-set rounds before an append gives up (each lost round means another relay appended). */
const MAX_CAS_ATTEMPTS = 200;
/** Most records one script call appends: concurrent callers beyond this wait for the next call. */
const MAX_GROUP_RECORDS = 1_000;
/** Records read per LRANGE / LINDEX pipeline, and index members per ZRANGEBYSCORE page. */
const READ_CHUNK = 1_000;
const INDEX_PAGE = 10_000;
const DAY_MS = 86_400_000;

const Reply = { appended: 1, alreadyAppended: 2, moved: 0, daySealed: -4 } as const;

function pause(attempt: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(2 + attempt, 25)));
}

function nextDayStart(day: string): number {
  return Date.parse(`${day}T00:00:00.000Z`) + DAY_MS;
}

function parseObject<T>(raw: string | null): T | undefined {
  if (raw === null) return undefined;
  try {
    const value = JSON.parse(raw) as unknown;
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as T) : undefined;
  } catch {
    return undefined;
  }
}

/** A parsed line that has what a query reads; anything else is damage that only verify reports. */
function usable(record: EvidenceRecord | undefined): record is EvidenceRecord {
  return record !== undefined && typeof record.seq === 'number' && typeof record.at === 'number' && typeof record.kind === 'string';
}

function lower(value: unknown): string | undefined {
  return typeof value === 'string' ? value.toLowerCase() : undefined;
}

/** Every condition of the query but the limit. */
function matches(record: EvidenceRecord, query: EvidenceQuery): boolean {
  if (query.from !== undefined && !(record.at >= query.from)) return false;
  if (query.to !== undefined && !(record.at < query.to)) return false;
  if (query.queueId !== undefined && record.queueId !== query.queueId) return false;
  if (query.messageId !== undefined && record.messageId !== query.messageId) return false;
  if (query.recipient !== undefined && lower(record.recipient) !== query.recipient.toLowerCase()) return false;
  if (query.domain !== undefined && (typeof record.recipient !== 'string' || recipientDomain(record.recipient) !== query.domain.toLowerCase())) return false;
  if (query.sender !== undefined && lower(record.sender) !== query.sender.toLowerCase()) return false;
  if (query.kinds !== undefined && !query.kinds.includes(record.kind)) return false;
  return true;
}

/** The index keys a record goes into: its queue id, Message-ID, recipient and recipient domain. */
type IndexKind = 'q' | 'm' | 'r' | 'd';
function indexEntries(record: EvidenceRecord): Array<[IndexKind, string]> {
  const entries: Array<[IndexKind, string]> = [];
  if (record.queueId) entries.push(['q', record.queueId]);
  if (record.messageId) entries.push(['m', record.messageId]);
  if (record.recipient) {
    entries.push(['r', record.recipient]);
    const domain = recipientDomain(record.recipient);
    if (domain) entries.push(['d', domain]);
  }
  return entries;
}

/** `<day>:<position>` of an index member, or undefined when it is not one. */
function parseMember(member: string): { day: string; pos: number } | undefined {
  const colon = member.indexOf(':');
  const day = member.slice(0, colon);
  const pos = Number(member.slice(colon + 1));
  return colon > 0 && TLSRPT_DAY.test(day) && Number.isSafeInteger(pos) && pos >= 0 ? { day, pos } : undefined;
}

interface Pending {
  inputs: readonly EvidenceRecordInput[];
  resolve: (records: EvidenceRecord[]) => void;
  reject: (error: unknown) => void;
}

/** What an append or a seal compares-and-sets against: the head and the last anchor as read (raw), and the base. */
interface LogState {
  headRaw: string;
  anchorRaw: string;
  head: EvidenceRecord | undefined;
  lastAnchor: EvidenceAnchor | undefined;
  base: EvidenceBase | null;
}

/**
 * The evidence log in Redis: one chain for every relay sharing the Redis. A day's records are a list (JSON lines,
 * RPUSH), anchors a hash by day, the head (the newest record) and the newest anchor strings, the base a string, the
 * days a sorted set by first sequence number; per id (queue id, Message-ID, recipient, domain) a sorted set of
 * `<day>:<position>` members scored by `at`, so a look-up reads only the records it names. Every key shares one
 * hash tag (keys.ts). Node chains each batch onto the head it read (SHA-256 cannot run in Redis Lua) and one
 * script appends it only if the head is still that one, so relays racing each other retry instead of forking the
 * chain; concurrent appends in one process share one script call.
 */
export class RedisEvidenceLog implements EvidenceLog {
  private readonly pending: Pending[] = [];
  private draining = false;
  /**
   * The log as this process's last append left it: the next append starts from it instead of reading it again
   * (one round trip fewer per batch). The script compares the head and the last anchor, so when anyone changed
   * them meanwhile it answers moved and the state is read afresh. The base it holds is only used with a head
   * and no anchor yet, when nothing can have been pruned.
   */
  private known: LogState | undefined;
  /**
   * Whether to start from `known`: not after it turned out stale (another relay appends too, and a stale start
   * costs a refused script call), again once a fresh read finds the log as this process left it.
   */
  private trustKnown = true;

  constructor(private readonly core: RedisCore) {}

  private now(): number {
    return this.core.options.now?.() ?? Date.now();
  }

  appendEvidence(records: readonly EvidenceRecordInput[]): Promise<EvidenceRecord[]> {
    if (records.length === 0) return Promise.resolve([]);
    // Checked before anything is sent: a score Redis refuses would stop the script half way through a batch.
    const bad = records.find((r) => typeof r.at !== 'number' || !Number.isFinite(r.at) || typeof r.kind !== 'string' || typeof r.actor !== 'string');
    if (bad) return Promise.reject(new TypeError(`not an evidence record (at must be a finite time, kind and actor strings): ${String(bad.kind)} at ${String(bad.at)}`));
    return new Promise<EvidenceRecord[]>((resolve, reject) => {
      this.pending.push({ inputs: records, resolve, reject });
      if (!this.draining) {
        this.draining = true;
        void this.drain();
      }
    });
  }

  /** Group commit: every caller waiting when a script call starts joins it (up to MAX_GROUP_RECORDS records). */
  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const group: Pending[] = [];
        let size = 0;
        while (this.pending.length > 0 && (group.length === 0 || size + this.pending[0]!.inputs.length <= MAX_GROUP_RECORDS)) {
          const next = this.pending.shift()!;
          group.push(next);
          size += next.inputs.length;
        }
        try {
          const stored = await this.appendBatch(group.flatMap((p) => p.inputs));
          let offset = 0;
          for (const caller of group) {
            caller.resolve(stored.slice(offset, offset + caller.inputs.length));
            offset += caller.inputs.length;
          }
        } catch (error) {
          for (const caller of group) caller.reject(error);
        }
      }
    } finally {
      this.draining = false;
    }
  }

  private async readState(): Promise<LogState> {
    const { redis, keys } = this.core;
    const [headRaw, anchorRaw, baseRaw] = await redis.mget(keys.evidenceHead(), keys.evidenceLastAnchor(), keys.evidenceBase());
    return {
      headRaw: headRaw ?? '',
      anchorRaw: anchorRaw ?? '',
      head: headRaw ? parseEvidenceLine(headRaw) : undefined,
      lastAnchor: parseObject<EvidenceAnchor>(anchorRaw ?? null),
      base: parseObject<EvidenceBase>(baseRaw ?? null) ?? null,
    };
  }

  /**
   * The anchor of the head's day, built from where the chain says the day starts (the newest anchor, else the
   * base, else the beginning) and the head, its last record. Only the head's day can be unsealed: every append
   * that starts a new day seals the day before.
   */
  private sealHeadDay(state: LogState, sealedAt: number): EvidenceAnchor {
    const head = state.head!;
    const before = state.lastAnchor
      ? { seq: state.lastAnchor.lastSeq, hash: state.lastAnchor.lastHash, anchor: state.lastAnchor.hash }
      : state.base
        ? { seq: state.base.lastSeq, hash: state.base.lastHash, anchor: state.base.anchorHash }
        : { seq: 0, hash: EVIDENCE_GENESIS, anchor: undefined };
    const first: EvidenceRecord = { ...head, seq: before.seq + 1, prevHash: before.hash };
    return sealDay(first, head, before.anchor, sealedAt);
  }

  private async appendBatch(inputs: readonly EvidenceRecordInput[]): Promise<EvidenceRecord[]> {
    const { keys } = this.core;
    let floor = 0;
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const fromKnown = attempt === 0 && this.trustKnown ? this.known : undefined;
      const state = fromKnown ?? (await this.readState());
      if (attempt === 0 && !fromKnown && this.known) this.trustKnown = state.headRaw === this.known.headRaw && state.anchorRaw === this.known.anchorRaw;
      this.known = undefined;
      const { head, lastAnchor, base } = state;
      // Days only move forward, whichever relay's clock is behind: never before the head, never into a sealed day.
      let loggedAt = Math.max(this.now(), head?.loggedAt ?? 0, floor);
      if (head && lastAnchor?.day === head.day && evidenceDay(loggedAt) === head.day) loggedAt = nextDayStart(head.day);
      const previous = head ? { seq: head.seq, hash: head.hash } : base ? { seq: base.lastSeq, hash: base.lastHash } : undefined;
      const records = chainEvidence(previous, inputs, loggedAt);
      const day = records[0]!.day;
      const anchor = head && head.day < day && lastAnchor?.day !== head.day ? this.sealHeadDay(state, loggedAt) : undefined;

      const indexKeys: string[] = [];
      const slot = new Map<string, number>();
      const perRecord: (string | number)[] = [];
      let lastLine = '';
      let minAt = Infinity;
      let maxAt = -Infinity;
      for (const record of records) {
        minAt = Math.min(minAt, record.at);
        maxAt = Math.max(maxAt, record.at);
        const refs = indexEntries(record).map(([kind, value]) => {
          const key = keys.evidenceIndex(kind, value);
          let n = slot.get(key);
          if (n === undefined) {
            indexKeys.push(key);
            n = 7 + indexKeys.length;
            slot.set(key, n);
          }
          return n;
        });
        lastLine = JSON.stringify(record);
        perRecord.push(lastLine, record.at, refs.length, ...refs);
      }
      const scriptKeys = [
        keys.evidenceHead(),
        keys.evidenceLastAnchor(),
        keys.evidenceAnchors(),
        keys.evidenceDays(),
        keys.evidenceDay(day),
        keys.evidenceDayIndexes(day),
        keys.evidenceSpans(),
        ...indexKeys,
      ];
      const anchorLine = anchor ? JSON.stringify(anchor) : '';
      const reply = await this.core.confirmed(
        'sgEvidenceAppend',
        scriptKeys.length,
        ...scriptKeys,
        state.headRaw,
        state.anchorRaw,
        anchor?.day ?? '',
        anchorLine,
        day,
        records[0]!.seq,
        records.length,
        minAt,
        maxAt,
        ...perRecord,
      );
      if (reply === Reply.appended || reply === Reply.alreadyAppended) {
        // As the script left the keys: the head is the last line sent, the last anchor the one sent if any.
        if (reply === Reply.appended) {
          this.known = { headRaw: lastLine, anchorRaw: anchor ? anchorLine : state.anchorRaw, head: parseEvidenceLine(lastLine), lastAnchor: anchor ?? lastAnchor, base };
        }
        if (anchor) await this.copyAnchor(anchor);
        return records;
      }
      if (fromKnown) {
        // Stale: read afresh at once (no pause: nobody raced this call, it started from an old state).
        this.trustKnown = false;
        continue;
      }
      if (reply === Reply.daySealed) floor = nextDayStart(day);
      else if (reply !== Reply.moved) throw new StoreError('internal', `unexpected Redis script reply ${String(reply)} to an evidence append`);
      await pause(attempt);
    }
    throw new StoreError('contention', `the evidence log kept moving; gave up after ${MAX_CAS_ATTEMPTS} attempts`);
  }

  /** The second copy of an anchor, outside Redis: `<anchorCopy>/<day>.json`, replaced atomically. */
  private async copyAnchor(anchor: EvidenceAnchor): Promise<void> {
    const folder = this.core.options.anchorCopy;
    if (!folder) return;
    try {
      // The same file the file store writes, so a copy folder reads the same whichever backend filled it.
      await fs.mkdir(folder, { recursive: true, mode: 0o700 });
      await writeFileAtomic(folder, path.join(folder, `${anchor.day}.json`), `${JSON.stringify(anchor, null, 2)}\n`);
    } catch (error) {
      // The anchor is stored in Redis already; failing the append now would only make the caller append twice.
      this.core.options.logger.warn({ event: 'evidence-anchor-copy-failed', day: anchor.day, err: (error as Error).message }, 'could not write the evidence anchor copy');
    }
  }

  queryEvidence(query: EvidenceQuery): AsyncIterable<EvidenceRecord> {
    return { [Symbol.asyncIterator]: () => this.query(query)[Symbol.asyncIterator]() };
  }

  private async *query(query: EvidenceQuery): AsyncGenerator<EvidenceRecord> {
    const limit = query.limit ?? Infinity;
    if (limit <= 0) return;
    let found = 0;
    const source = await this.core.guard(() => this.pickIndex(query));
    const places = source === undefined ? undefined : await this.indexPlaces(source, query);
    // No id, or an index key that is not a sorted set any more (damage): read the days instead.
    const records = places === undefined ? this.scanDays(query) : this.readPlaces(places);
    for await (const record of records) {
      if (!matches(record, query)) continue;
      yield record;
      if (++found >= limit) return;
    }
  }

  /** The smallest index among the ids the query names; undefined when it names none. */
  private async pickIndex(query: EvidenceQuery): Promise<string | undefined> {
    const { redis, keys } = this.core;
    const candidates: string[] = [];
    if (query.queueId !== undefined) candidates.push(keys.evidenceIndex('q', query.queueId));
    if (query.messageId !== undefined) candidates.push(keys.evidenceIndex('m', query.messageId));
    if (query.recipient !== undefined) candidates.push(keys.evidenceIndex('r', query.recipient.toLowerCase()));
    if (query.domain !== undefined) candidates.push(keys.evidenceIndex('d', query.domain.toLowerCase()));
    if (candidates.length <= 1) return candidates[0];
    const sizes = await Promise.all(candidates.map((key) => redis.zcard(key).catch(() => Infinity)));
    let best = 0;
    for (let i = 1; i < candidates.length; i++) if (sizes[i]! < sizes[best]!) best = i;
    return candidates[best];
  }

  /** Where the records an index names within [from, to) are, in chain order; undefined when the key is not an index. */
  private async indexPlaces(key: string, query: EvidenceQuery): Promise<Array<{ day: string; pos: number }> | undefined> {
    const redis = this.core.redis;
    const min = query.from !== undefined ? String(query.from) : '-inf';
    const max = query.to !== undefined ? `(${query.to}` : '+inf';
    const places: Array<{ day: string; pos: number }> = [];
    // Pages may overlap when appends land between them: each member is read once.
    const seen = new Set<string>();
    for (let offset = 0; ; offset += INDEX_PAGE) {
      let page: string[];
      try {
        page = await this.core.guard(() => redis.zrangebyscore(key, min, max, 'LIMIT', offset, INDEX_PAGE));
      } catch (error) {
        if (error instanceof Error && /WRONGTYPE/.test(error.message)) return undefined;
        throw error;
      }
      for (const member of page) {
        const place = seen.has(member) ? undefined : parseMember(member);
        seen.add(member);
        if (place) places.push(place);
      }
      if (page.length < INDEX_PAGE) break;
    }
    return places.sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : a.pos - b.pos));
  }

  /** The records at those places, in that order; members pointing nowhere or at a damaged line are skipped. */
  private async *readPlaces(places: ReadonlyArray<{ day: string; pos: number }>): AsyncGenerator<EvidenceRecord> {
    const { redis, keys } = this.core;
    for (let i = 0; i < places.length; i += READ_CHUNK) {
      const chunk = places.slice(i, i + READ_CHUNK);
      const pipeline = redis.pipeline();
      for (const place of chunk) pipeline.lindex(keys.evidenceDay(place.day), place.pos);
      const replies = (await this.core.guard(() => pipeline.exec())) ?? [];
      for (const [error, raw] of replies) {
        if (error) throw error;
        const record = typeof raw === 'string' ? parseEvidenceLine(raw) : undefined;
        if (usable(record)) yield record;
      }
    }
  }

  /** Every record of the days the time range can hold (all days without one), in chain order. */
  private async *scanDays(query: EvidenceQuery): AsyncGenerator<EvidenceRecord> {
    const firstDay = query.from !== undefined ? evidenceDay(query.from - DAY_MS) : undefined;
    const lastDay = query.to !== undefined ? evidenceDay(query.to) : undefined;
    const days = (await this.core.guard(() => this.evidenceDays())).filter((d) => (firstDay === undefined || d >= firstDay) && (lastDay === undefined || d <= lastDay));
    for (const day of days) {
      for (let start = 0; ; start += READ_CHUNK) {
        const lines = await this.core.guard(() => this.core.redis.lrange(this.core.keys.evidenceDay(day), start, start + READ_CHUNK - 1));
        for (const line of lines) {
          const record = parseEvidenceLine(line);
          if (usable(record)) yield record;
        }
        if (lines.length < READ_CHUNK) break;
      }
    }
  }

  async evidenceDays(): Promise<string[]> {
    const days = await this.core.redis.zrange(this.core.keys.evidenceDays(), '0', '-1');
    return days.filter((day) => TLSRPT_DAY.test(day)).sort();
  }

  async readEvidenceDay(day: string): Promise<string[]> {
    if (!TLSRPT_DAY.test(day)) return [];
    const key = this.core.keys.evidenceDay(day);
    const lines: string[] = [];
    for (let start = 0; ; start += READ_CHUNK * 5) {
      const chunk = await this.core.redis.lrange(key, start, start + READ_CHUNK * 5 - 1);
      lines.push(...chunk);
      if (chunk.length < READ_CHUNK * 5) return lines;
    }
  }

  async evidenceAnchors(): Promise<EvidenceAnchor[]> {
    const { redis, keys } = this.core;
    const replies = await redis.multi().hgetall(keys.evidenceAnchors()).get(keys.evidenceLastAnchor()).get(keys.evidenceBase()).exec();
    if (!replies) throw new StoreError('internal', 'Redis transaction aborted');
    for (const [error] of replies) if (error) throw error;
    const all = replies[0]![1] as Record<string, string>;
    const last = parseObject<EvidenceAnchor>(replies[1]![1] as string | null);
    const base = parseObject<EvidenceBase>(replies[2]![1] as string | null);
    const anchors = Object.keys(all)
      .sort()
      .map((day) => {
        // A damaged anchor is handed on as what is left of it (its day), so verify names that day.
        const anchor = parseObject<EvidenceAnchor>(all[day] ?? null);
        return anchor ?? ({ day } as EvidenceAnchor);
      });
    // The newest anchor is also kept on its own (appends link to it). Missing from the hash while its day is
    // still kept means it was deleted there: handed on as a damaged entry, so verify names that day too.
    if (last && typeof last.day === 'string' && all[last.day] === undefined && (base === undefined || last.day > base.prunedThrough)) {
      anchors.push({ day: last.day } as EvidenceAnchor);
      anchors.sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : 0));
    }
    return anchors;
  }

  async evidenceBase(): Promise<EvidenceBase | null> {
    return parseObject<EvidenceBase>(await this.core.redis.get(this.core.keys.evidenceBase())) ?? null;
  }

  async evidenceHead(): Promise<EvidenceRecord | undefined> {
    const raw = await this.core.redis.get(this.core.keys.evidenceHead());
    return raw ? parseEvidenceLine(raw) : undefined;
  }

  async sealEvidence(now?: number): Promise<EvidenceAnchor[]> {
    const at = now ?? this.now();
    const today = evidenceDay(at);
    const { keys } = this.core;
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const state = await this.readState();
      const head = state.head;
      if (!head || head.day >= today || state.lastAnchor?.day === head.day) return [];
      const anchor = this.sealHeadDay(state, at);
      const scriptKeys = [
        keys.evidenceHead(),
        keys.evidenceLastAnchor(),
        keys.evidenceAnchors(),
        keys.evidenceDays(),
        keys.evidenceDay(head.day),
        keys.evidenceDayIndexes(head.day),
        keys.evidenceSpans(),
      ];
      const reply = await this.core.confirmed('sgEvidenceAppend', scriptKeys.length, ...scriptKeys, state.headRaw, state.anchorRaw, anchor.day, JSON.stringify(anchor), head.day, 0, 0, 0, 0);
      if (reply === Reply.appended) {
        await this.copyAnchor(anchor);
        return [anchor];
      }
      if (reply !== Reply.moved) throw new StoreError('internal', `unexpected Redis script reply ${String(reply)} to an evidence seal`);
      await pause(attempt);
    }
    throw new StoreError('contention', `the evidence log kept moving; gave up sealing after ${MAX_CAS_ATTEMPTS} attempts`);
  }

  async pruneEvidence(beforeDay: string): Promise<EvidencePruneResult> {
    if (!TLSRPT_DAY.test(beforeDay)) throw new TypeError(`not a day (YYYY-MM-DD): ${beforeDay}`);
    const { redis, keys } = this.core;
    const now = this.now();
    const today = evidenceDay(now);
    await this.sealEvidence(now);
    const [days, anchors] = await Promise.all([this.evidenceDays(), redis.hgetall(keys.evidenceAnchors())]);
    const removed: EvidenceAnchor[] = [];
    let base: EvidenceBase | null = null;
    for (const day of days) {
      // Only whole sealed days, oldest first, stopping at the first that is not (the open day, or damage).
      const raw = anchors[day];
      const anchor = raw === undefined ? undefined : parseObject<EvidenceAnchor>(raw);
      if (day >= beforeDay || day >= today || raw === undefined || anchor === undefined) break;
      const next = pruneBase(anchor, now);
      const reply = await redis.sgEvidencePruneDay(keys.evidenceDays(), keys.evidenceAnchors(), keys.evidenceBase(), keys.evidenceDay(day), keys.evidencePruning(), day, JSON.stringify(next), raw);
      if (reply === 1) {
        removed.push(anchor);
        base = next;
      } else if (reply !== 0) break;
    }
    await this.removePrunedIndexes();
    return { days: removed.map((a) => a.day), records: removed.reduce((sum, a) => sum + a.count, 0), anchors: removed, base: base ?? (await this.evidenceBase()) };
  }

  /** Takes the members of pruned days out of the index keys they touched, a bounded batch at a time. */
  private async removePrunedIndexes(): Promise<void> {
    const { redis, keys } = this.core;
    for (const day of await redis.smembers(keys.evidencePruning())) {
      const span = (await redis.hget(keys.evidenceSpans(), day))?.split('\t') ?? [];
      const min = span.length === 2 ? span[0]! : '-inf';
      const max = span.length === 2 ? span[1]! : '+inf';
      const prefix = `${day}:`;
      let cursor = '0';
      do {
        const [next, indexKeys] = await redis.sscan(keys.evidenceDayIndexes(day), cursor, 'COUNT', 200);
        cursor = next;
        const read = redis.pipeline();
        for (const key of indexKeys) read.zrangebyscore(key, min, max);
        const replies = (await read.exec()) ?? [];
        const remove = redis.pipeline();
        let removals = 0;
        replies.forEach(([error, members], i) => {
          if (error) throw error;
          const ofDay = (members as string[]).filter((m) => m.startsWith(prefix));
          if (ofDay.length > 0) {
            remove.zrem(indexKeys[i]!, ...ofDay);
            removals++;
          }
        });
        if (removals > 0) await this.core.checked(remove);
      } while (cursor !== '0');
      await this.core.checked(redis.multi().del(keys.evidenceDayIndexes(day)).hdel(keys.evidenceSpans(), day).srem(keys.evidencePruning(), day));
    }
  }
}
