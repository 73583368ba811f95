import { chainEvidence, EVIDENCE_GENESIS, evidenceDay, pruneBase, sealDay, verifyEvidence } from '../../src/store/evidence-chain';
import type { EvidenceAnchor, EvidenceBase, EvidenceRecord, EvidenceRecordInput } from '../../src/store/types';

const DAY = 86_400_000;
const T0 = Date.parse('2026-11-01T10:00:00Z');

function input(n: number): EvidenceRecordInput {
  return { kind: 'recipient-outcome', at: T0 + n, queueId: `q${n}`, messageId: null, recipient: `P${n}@Example.org`, sender: 'app@clinic.test', actor: 'relay', data: { outcome: 'delivered' } };
}

/** An in-memory log of three days (3, 2 and 2 records), the first two sealed, stored as JSON lines. */
function buildLog(): { lines: Map<string, string[]>; anchors: EvidenceAnchor[]; base: EvidenceBase | null; head: () => EvidenceRecord | undefined } {
  const lines = new Map<string, string[]>();
  const anchors: EvidenceAnchor[] = [];
  let last: EvidenceRecord | undefined;
  let n = 0;
  for (const [d, count] of [
    [0, 3],
    [1, 2],
    [2, 2],
  ] as const) {
    const records = chainEvidence(
      last,
      Array.from({ length: count }, () => input(n++)),
      T0 + d * DAY,
    );
    lines.set(
      records[0]!.day,
      records.map((r) => JSON.stringify(r)),
    );
    if (d < 2) anchors.push(sealDay(records[0]!, records[records.length - 1]!, anchors[anchors.length - 1]?.hash, T0 + (d + 1) * DAY));
    last = records[records.length - 1];
  }
  return { lines, anchors, base: null, head: () => last };
}

function reader(log: ReturnType<typeof buildLog>) {
  return {
    evidenceDays: async () => [...log.lines.keys()].sort(),
    readEvidenceDay: async (day: string) => log.lines.get(day) ?? [],
    evidenceAnchors: async () => log.anchors,
    evidenceBase: async () => log.base,
    evidenceHead: async () => log.head(),
  };
}

const day = (d: number) => evidenceDay(T0 + d * DAY);

describe('evidence chain', () => {
  it('chains records across a batch and across days, lower-casing the recipient', () => {
    const [a, b] = chainEvidence(undefined, [input(1), input(2)], T0);
    expect(a).toMatchObject({ seq: 1, prevHash: EVIDENCE_GENESIS, day: '2026-11-01', recipient: 'p1@example.org' });
    expect(b!.prevHash).toBe(a!.hash);
    const [c] = chainEvidence(b, [input(3)], T0 + DAY);
    expect(c).toMatchObject({ seq: 3, prevHash: b!.hash, day: '2026-11-02' });
  });

  it('passes an untouched log, whole or by range', async () => {
    const log = buildLog();
    expect(await verifyEvidence(reader(log))).toMatchObject({ ok: true, days: 3, records: 7, anchors: 2, openDay: day(2), firstBroken: null });
    expect(await verifyEvidence(reader(log), { fromDay: day(1), toDay: day(1) })).toMatchObject({ ok: true, days: 1, records: 2 });
    expect(await verifyEvidence(reader(log), { fromDay: day(2) })).toMatchObject({ ok: true, records: 2 });
  });

  it('names an edited record', async () => {
    const log = buildLog();
    const lines = log.lines.get(day(1))!;
    lines[1] = lines[1]!.replace('delivered', 'diverted');
    expect((await verifyEvidence(reader(log))).firstBroken).toEqual({ day: day(1), line: 2, seq: 5, reason: expect.stringContaining('changed after it was written') });
  });

  it('names a removed record, and a line that is no record', async () => {
    const log = buildLog();
    log.lines.get(day(0))!.splice(1, 1);
    expect((await verifyEvidence(reader(log))).firstBroken).toMatchObject({ day: day(0), line: 2, seq: 2, reason: expect.stringContaining('removed or moved') });
    const other = buildLog();
    other.lines.get(day(2))![0] = '{"seq":6,';
    expect((await verifyEvidence(reader(other))).firstBroken).toMatchObject({ day: day(2), line: 1, seq: 6, reason: expect.stringContaining('not a record') });
  });

  it('names two swapped records at the first of them', async () => {
    const log = buildLog();
    const lines = log.lines.get(day(0))!;
    [lines[0], lines[1]] = [lines[1]!, lines[0]!];
    expect((await verifyEvidence(reader(log))).firstBroken).toMatchObject({ day: day(0), line: 1, seq: 1 });
  });

  it('notices the last record of a sealed day removed, and a whole day removed with its anchor', async () => {
    const log = buildLog();
    log.lines.get(day(1))!.pop();
    expect((await verifyEvidence(reader(log))).firstBroken).toMatchObject({ day: day(1), line: 2, seq: 5, reason: expect.stringContaining('its anchor seals records 4 to 5') });
    const gone = buildLog();
    gone.lines.delete(day(0));
    gone.anchors.shift();
    expect((await verifyEvidence(reader(gone))).firstBroken).toMatchObject({ day: day(1), line: 0, reason: expect.stringContaining('does not link to the anchor before it') });
  });

  it('notices the anchor of a day that is not the newest removed', async () => {
    const log = buildLog();
    log.anchors.pop();
    expect((await verifyEvidence(reader(log))).firstBroken).toMatchObject({ day: day(1), line: 3, seq: 6, reason: expect.stringContaining('has no anchor') });
  });

  it('notices the tail of the open day cut against the head', async () => {
    const log = buildLog();
    log.lines.get(day(2))!.pop();
    expect((await verifyEvidence(reader(log))).firstBroken).toMatchObject({ day: day(2), line: 2, seq: 7, reason: expect.stringContaining('head is record 7') });
  });

  it('starts after a prune at its base, and refuses a forged base', async () => {
    const log = buildLog();
    log.base = pruneBase(log.anchors[0]!, T0 + 3 * DAY);
    log.lines.delete(day(0));
    log.anchors.shift();
    expect(await verifyEvidence(reader(log))).toMatchObject({ ok: true, days: 2, records: 4 });
    log.base = { ...log.base, lastHash: EVIDENCE_GENESIS };
    expect((await verifyEvidence(reader(log))).ok).toBe(false);
  });
});
