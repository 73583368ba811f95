import { hash } from 'node:crypto';
import type { EvidenceAnchor, EvidenceBase, EvidenceRecord, EvidenceRecordInput } from './model';
import { canonicalJson, GENESIS_HASH } from './portal-chain';
import type { EvidenceLog } from './roles';

/*
 * The evidence log's hash chain, for both backends: how a record and a day's anchor are built and hashed, and how
 * the stored log is checked. One chain runs through every day (a day's first record links to the day before's
 * last), so an edit, a removal or a reordering anywhere shows at the first record that is wrong.
 */

/** prevHash of the very first record, prevAnchorHash of the first anchor. */
export const EVIDENCE_GENESIS = GENESIS_HASH;

/** The UTC day (YYYY-MM-DD) of an epoch-ms time: the segment a record appended then goes to. */
export function evidenceDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The recipient domain of an address, lower-cased ('' when there is none). */
export function recipientDomain(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase();
}

function sha256(text: string): string {
  return hash('sha256', text, 'hex');
}

/** SHA-256 hex of prevHash + the canonical JSON of the record without its hash. */
export function evidenceRecordHash(record: Omit<EvidenceRecord, 'hash'> | EvidenceRecord): string {
  const { hash: _hash, ...rest } = record as EvidenceRecord;
  return sha256(rest.prevHash + canonicalJson(rest));
}

/**
 * The stored form of a batch appended after `previous` (the head; undefined for an empty log, or the prune base),
 * all logged at `loggedAt`. Both backends build every record with this, so the chain is the same on each.
 */
export function chainEvidence(previous: { seq: number; hash: string } | undefined, inputs: readonly EvidenceRecordInput[], loggedAt: number): EvidenceRecord[] {
  const day = evidenceDay(loggedAt);
  let seq = previous?.seq ?? 0;
  let prevHash = previous?.hash ?? EVIDENCE_GENESIS;
  return inputs.map((input) => {
    const record: Omit<EvidenceRecord, 'hash'> = {
      ...input,
      recipient: input.recipient === null ? null : input.recipient.toLowerCase(),
      seq: ++seq,
      day,
      loggedAt,
      prevHash,
    };
    // The record has no hash member yet: hash it as it is (evidenceRecordHash would copy it to drop one).
    prevHash = sha256(record.prevHash + canonicalJson(record));
    return { ...record, hash: prevHash };
  });
}

/** SHA-256 hex of prevAnchorHash + the canonical JSON of the anchor without its hash. */
export function evidenceAnchorHash(anchor: Omit<EvidenceAnchor, 'hash'> | EvidenceAnchor): string {
  const { hash: _hash, ...rest } = anchor as EvidenceAnchor;
  return sha256(rest.prevAnchorHash + canonicalJson(rest));
}

/** The anchor sealing a day whose records run from `first` to `last`, chained to the anchor before it. */
export function sealDay(first: EvidenceRecord, last: EvidenceRecord, previousAnchorHash: string | undefined, sealedAt: number): EvidenceAnchor {
  const anchor: Omit<EvidenceAnchor, 'hash'> = {
    day: first.day,
    firstSeq: first.seq,
    lastSeq: last.seq,
    count: last.seq - first.seq + 1,
    firstPrevHash: first.prevHash,
    lastHash: last.hash,
    sealedAt,
    prevAnchorHash: previousAnchorHash ?? EVIDENCE_GENESIS,
  };
  return { ...anchor, hash: evidenceAnchorHash(anchor) };
}

/** The base a prune leaves: the last removed day's anchor. */
export function pruneBase(lastRemoved: EvidenceAnchor, prunedAt: number): EvidenceBase {
  return { prunedThrough: lastRemoved.day, lastSeq: lastRemoved.lastSeq, lastHash: lastRemoved.lastHash, anchorHash: lastRemoved.hash, prunedAt };
}

/** Parses one stored line; undefined when it is not a record object. */
export function parseEvidenceLine(line: string): EvidenceRecord | undefined {
  try {
    const value = JSON.parse(line) as unknown;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value as EvidenceRecord;
  } catch {
    // not JSON: damaged or edited
  }
  return undefined;
}

/** The first thing wrong in the log: the day, the line in that day's segment (1-based; 0 for an anchor) and why. */
export interface EvidenceBreak {
  day: string;
  line: number;
  /** The sequence number expected there. */
  seq: number;
  reason: string;
}

export interface EvidenceVerification {
  ok: boolean;
  /** The days checked, first and last (null when the log is empty). */
  fromDay: string | null;
  toDay: string | null;
  days: number;
  records: number;
  anchors: number;
  /** The day still open (no anchor yet): its records are checked by the chain, its end only against the head. */
  openDay: string | null;
  firstBroken: EvidenceBreak | null;
}

type Reader = Pick<EvidenceLog, 'evidenceDays' | 'readEvidenceDay' | 'evidenceAnchors' | 'evidenceBase' | 'evidenceHead'>;

/**
 * Checks the anchors (each chained to the one before and to the base) and then every record of the days in
 * [fromDay, toDay] (inclusive; all days by default) in order: each line a record, numbered one after the other,
 * of its day, linked to the record before and hashing to its stored hash; a sealed day must end where its anchor
 * says, the open day where the head is. Stops at the first break, naming it.
 */
export async function verifyEvidence(log: Reader, range: { fromDay?: string; toDay?: string } = {}): Promise<EvidenceVerification> {
  const [anchors, base, head, listed] = await Promise.all([log.evidenceAnchors(), log.evidenceBase(), log.evidenceHead(), log.evidenceDays()]);
  const byDay = new Map(anchors.map((a) => [a.day, a]));
  const allDays = [...new Set([...listed, ...anchors.map((a) => a.day)])].filter((d) => base === null || d > base.prunedThrough).sort();
  const days = allDays.filter((d) => (range.fromDay === undefined || d >= range.fromDay) && (range.toDay === undefined || d <= range.toDay));
  const openDay = allDays.length > 0 && !byDay.has(allDays[allDays.length - 1]!) ? allDays[allDays.length - 1]! : null;
  const result = (records: number, firstBroken: EvidenceBreak | null): EvidenceVerification => ({
    ok: firstBroken === null,
    fromDay: days[0] ?? null,
    toDay: days[days.length - 1] ?? null,
    days: days.length,
    records,
    anchors: anchors.length,
    openDay,
    firstBroken,
  });

  const anchorBreak = checkAnchors(anchors, base);
  if (anchorBreak) return result(0, anchorBreak);

  // Where the first checked day must start: its own anchor, else the last anchor before it, else the base.
  const first = days[0];
  const before = first === undefined ? undefined : (byDay.get(first) ?? [...anchors].reverse().find((a) => a.day < first));
  let expectedSeq = before === undefined ? (base?.lastSeq ?? 0) + 1 : before.day === first ? before.firstSeq : before.lastSeq + 1;
  let expectedPrev = before === undefined ? (base?.lastHash ?? EVIDENCE_GENESIS) : before.day === first ? before.firstPrevHash : before.lastHash;
  let records = 0;
  for (const day of days) {
    const lines = await log.readEvidenceDay(day);
    for (let i = 0; i < lines.length; i++) {
      const at = { day, line: i + 1, seq: expectedSeq };
      const record = parseEvidenceLine(lines[i]!);
      if (!record) return result(records, { ...at, reason: `line ${i + 1} of ${day} is not a record: damaged or edited` });
      if (record.seq !== expectedSeq) {
        const why = typeof record.seq === 'number' && record.seq > expectedSeq ? 'a record was removed or moved' : 'a record was moved, copied or inserted';
        return result(records, { ...at, reason: `record ${expectedSeq} was expected at line ${i + 1} of ${day}, found ${String(record.seq)}: ${why}` });
      }
      if (record.day !== day) return result(records, { ...at, reason: `record ${expectedSeq} at line ${i + 1} of ${day} says it belongs to ${String(record.day)}` });
      if (record.prevHash !== expectedPrev) return result(records, { ...at, reason: `record ${expectedSeq} at line ${i + 1} of ${day} does not link to the record before it` });
      if (evidenceRecordHash(record) !== record.hash) return result(records, { ...at, reason: `record ${expectedSeq} at line ${i + 1} of ${day} was changed after it was written (hash mismatch)` });
      expectedPrev = record.hash;
      expectedSeq++;
      records++;
    }
    const end = { day, line: lines.length + 1, seq: expectedSeq };
    const anchor = byDay.get(day);
    // Every day before the newest is sealed before a later day's first record is written.
    if (!anchor && day !== allDays[allDays.length - 1]) {
      return result(records, { ...end, reason: `${day} has no anchor although later days exist: its anchor was removed` });
    }
    if (anchor && (anchor.lastSeq !== expectedSeq - 1 || anchor.lastHash !== expectedPrev)) {
      return result(records, { ...end, reason: `${day} ends at record ${expectedSeq - 1} but its anchor seals records ${anchor.firstSeq} to ${anchor.lastSeq}: records were removed or added` });
    }
    if (!anchor && head !== undefined && head.day === day && (head.seq !== expectedSeq - 1 || head.hash !== expectedPrev)) {
      return result(records, { ...end, reason: `${day} ends at record ${expectedSeq - 1} but the log's head is record ${head.seq}: records at the end were removed` });
    }
  }
  return result(records, null);
}

function checkAnchors(anchors: readonly EvidenceAnchor[], base: EvidenceBase | null): EvidenceBreak | null {
  let prevHash = base?.anchorHash ?? EVIDENCE_GENESIS;
  let nextSeq = (base?.lastSeq ?? 0) + 1;
  let lastHash = base?.lastHash ?? EVIDENCE_GENESIS;
  for (const anchor of anchors) {
    const at = { day: anchor.day, line: 0, seq: nextSeq };
    if (anchor.prevAnchorHash !== prevHash) return { ...at, reason: `the anchor of ${anchor.day} does not link to the anchor before it: an anchor was removed, moved or replaced` };
    if (evidenceAnchorHash(anchor) !== anchor.hash) return { ...at, reason: `the anchor of ${anchor.day} was changed after it was written (hash mismatch)` };
    if (anchor.firstSeq !== nextSeq || anchor.firstPrevHash !== lastHash || anchor.count !== anchor.lastSeq - anchor.firstSeq + 1) {
      return { ...at, reason: `the anchor of ${anchor.day} does not continue the day before it (records ${nextSeq} on expected)` };
    }
    prevHash = anchor.hash;
    nextSeq = anchor.lastSeq + 1;
    lastHash = anchor.lastHash;
  }
  return null;
}
