import { EVIDENCE_GENESIS, evidenceAnchorHash, evidenceDay, evidenceRecordHash, parseEvidenceLine, pruneBase, verifyEvidence } from '../../src/store/evidence-chain';
import type { EvidenceKind, EvidenceQuery, EvidenceRecord, EvidenceRecordInput } from '../../src/store/model';
import type { EvidenceLog } from '../../src/store/roles';

/*
 * The behaviour every evidence log backend must share. A backend's test file calls describeEvidenceLog with a
 * factory that opens a fresh, empty log driven by the given clock (the role has no clock parameter, so each
 * backend takes an optional `now` in its constructor options) and can open a second log on the same data, as
 * another process (the admin CLI) or another relay would.
 */

export interface EvidenceHarness {
  log: EvidenceLog;
  /** Another log on the same data, as another process would open it, driven by the same clock. */
  peer(): Promise<EvidenceLog>;
  dispose(): Promise<void>;
}

export type MakeEvidenceLog = (now: () => number) => Promise<EvidenceHarness>;

export const DAY_MS = 86_400_000;
/** Noon UTC on 2026-03-10, 11 and 12. */
export const DAY1 = Date.UTC(2026, 2, 10, 12);
export const DAY2 = DAY1 + DAY_MS;
export const DAY3 = DAY2 + DAY_MS;

/** A settable clock for the backends. */
export function testClock(start = DAY1): { now: () => number; set(ms: number): void } {
  let current = start;
  return {
    now: () => current,
    set(ms: number) {
      current = ms;
    },
  };
}

export function outcomeInput(n: number, overrides: Partial<EvidenceRecordInput> = {}): EvidenceRecordInput {
  return {
    kind: 'recipient-outcome',
    at: DAY1 - 1000,
    queueId: `Q${n}`,
    messageId: `<m${n}@clinic.test>`,
    recipient: `user${n}@Partner${n % 3}.test`,
    sender: 'Sender@Clinic.test',
    actor: 'relay',
    data: { outcome: 'delivered', tls: { version: 'TLSv1.3' }, n },
    ...overrides,
  };
}

async function all(iterable: AsyncIterable<EvidenceRecord>): Promise<EvidenceRecord[]> {
  const out: EvidenceRecord[] = [];
  for await (const record of iterable) out.push(record);
  return out;
}

async function query(log: EvidenceLog, q: EvidenceQuery): Promise<number[]> {
  return (await all(log.queryEvidence(q))).map((r) => r.seq);
}

/** Every record stored, in day and line order, parsed. */
async function stored(log: EvidenceLog): Promise<EvidenceRecord[]> {
  const out: EvidenceRecord[] = [];
  for (const day of await log.evidenceDays()) for (const line of await log.readEvidenceDay(day)) out.push(parseEvidenceLine(line)!);
  return out;
}

function expectChained(records: readonly EvidenceRecord[], firstPrev = EVIDENCE_GENESIS): void {
  let prev = firstPrev;
  for (const record of records) {
    expect(record.prevHash).toBe(prev);
    expect(evidenceRecordHash(record)).toBe(record.hash);
    prev = record.hash;
  }
}

export function describeEvidenceLog(name: string, makeLog: MakeEvidenceLog): void {
  describe(`evidence log contract: ${name}`, () => {
    let clock: ReturnType<typeof testClock>;
    let harness: EvidenceHarness;
    let log: EvidenceLog;

    beforeEach(async () => {
      clock = testClock();
      harness = await makeLog(clock.now);
      log = harness.log;
    });
    afterEach(async () => {
      await harness.dispose();
    });

    it('starts empty and verifies', async () => {
      expect(await log.evidenceHead()).toBeUndefined();
      expect(await log.evidenceDays()).toEqual([]);
      expect(await log.evidenceAnchors()).toEqual([]);
      expect(await log.evidenceBase()).toBeNull();
      expect(await log.readEvidenceDay(evidenceDay(DAY1))).toEqual([]);
      expect(await query(log, {})).toEqual([]);
      const v = await verifyEvidence(log);
      expect(v).toMatchObject({ ok: true, records: 0, days: 0, firstBroken: null });
    });

    it('appends in order, numbered and chained across batches, and stores exactly what it returns', async () => {
      const first = await log.appendEvidence([outcomeInput(1), outcomeInput(2)]);
      clock.set(DAY1 + 5000);
      const second = await log.appendEvidence([outcomeInput(3)]);
      expect(first.map((r) => r.seq)).toEqual([1, 2]);
      expect(second.map((r) => r.seq)).toEqual([3]);
      expect(first[0]).toMatchObject({ day: '2026-03-10', loggedAt: DAY1, recipient: 'user1@partner1.test', queueId: 'Q1', kind: 'recipient-outcome' });
      expect(second[0]!.loggedAt).toBe(DAY1 + 5000);
      expectChained([...first, ...second]);
      expect(await stored(log)).toEqual([...first, ...second]);
      expect(await log.evidenceHead()).toEqual(second[0]);
      expect(await log.appendEvidence([])).toEqual([]);
      expect(await verifyEvidence(log)).toMatchObject({ ok: true, records: 3, days: 1, openDay: '2026-03-10' });
    });

    it('forms one chain when many callers and a second process append at once', async () => {
      const peer = await harness.peer();
      const callers = 24;
      const per = 5;
      const results = await Promise.all(Array.from({ length: callers }, (_, c) => (c % 2 === 0 ? log : peer).appendEvidence(Array.from({ length: per }, (_, i) => outcomeInput(c * 100 + i)))));
      for (const batch of results) {
        // One call's records stay together and in order.
        expect(batch.map((r) => r.seq)).toEqual(Array.from({ length: per }, (_, i) => batch[0]!.seq + i));
      }
      const seqs = results.flat().map((r) => r.seq);
      expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: callers * per }, (_, i) => i + 1));
      const records = await stored(peer);
      expect(records.map((r) => r.seq)).toEqual(Array.from({ length: callers * per }, (_, i) => i + 1));
      expectChained(records);
      expect((await peer.evidenceHead())!.seq).toBe(callers * per);
      expect((await log.evidenceHead())!.seq).toBe(callers * per);
      expect(await verifyEvidence(log)).toMatchObject({ ok: true, records: callers * per });
    });

    it('continues the chain across days and seals the earlier day on the first append of a later one', async () => {
      const d1 = await log.appendEvidence([outcomeInput(1), outcomeInput(2)]);
      clock.set(DAY2);
      const d2 = await log.appendEvidence([outcomeInput(3)]);
      expect(d2[0]).toMatchObject({ seq: 3, day: '2026-03-11', prevHash: d1[1]!.hash });
      expect(await log.evidenceDays()).toEqual(['2026-03-10', '2026-03-11']);
      const anchors = await log.evidenceAnchors();
      expect(anchors).toHaveLength(1);
      expect(anchors[0]).toMatchObject({ day: '2026-03-10', firstSeq: 1, lastSeq: 2, count: 2, firstPrevHash: EVIDENCE_GENESIS, lastHash: d1[1]!.hash, prevAnchorHash: EVIDENCE_GENESIS });
      expect(evidenceAnchorHash(anchors[0]!)).toBe(anchors[0]!.hash);
      expect(await verifyEvidence(log)).toMatchObject({ ok: true, records: 3, days: 2, anchors: 1, openDay: '2026-03-11' });
    });

    it('seals every earlier unsealed day once, chaining the anchors', async () => {
      await log.appendEvidence([outcomeInput(1)]);
      clock.set(DAY2);
      await log.appendEvidence([outcomeInput(2)]);
      // Day 2 is still open: nothing before the day of `now` is unsealed but day 1, already sealed.
      expect(await log.sealEvidence(DAY2 + 1000)).toEqual([]);
      const sealed = await log.sealEvidence(DAY3);
      expect(sealed.map((a) => a.day)).toEqual(['2026-03-11']);
      const anchors = await log.evidenceAnchors();
      expect(anchors.map((a) => a.day)).toEqual(['2026-03-10', '2026-03-11']);
      expect(anchors[1]!.prevAnchorHash).toBe(anchors[0]!.hash);
      expect(await log.sealEvidence(DAY3)).toEqual([]);
      expect(await verifyEvidence(log)).toMatchObject({ ok: true, anchors: 2, openDay: null });
      // Appending on day 3 continues after the sealed days.
      clock.set(DAY3);
      const [r3] = await log.appendEvidence([outcomeInput(3)]);
      expect(r3).toMatchObject({ seq: 3, prevHash: anchors[1]!.lastHash });
      expect(await verifyEvidence(log)).toMatchObject({ ok: true, records: 3, openDay: '2026-03-12' });
    });

    describe('queries', () => {
      let seqOf: (n: number) => number;
      beforeEach(async () => {
        const byN = new Map<number, number>();
        const put = async (n: number, overrides: Partial<EvidenceRecordInput> = {}) => {
          const [r] = await log.appendEvidence([outcomeInput(n, overrides)]);
          byN.set(n, r!.seq);
        };
        await put(1, { at: DAY1 - 1000 });
        await put(2, { at: DAY1 - 500, recipient: 'Other@PARTNER1.test' });
        await put(3, { at: DAY1 - 100, kind: 'admin-action', queueId: 'Q1', messageId: null, recipient: null, sender: null, actor: 'cli:root' });
        clock.set(DAY2);
        await put(4, { at: DAY2 - 10, queueId: 'Q1', messageId: '<m1@clinic.test>', sender: '' });
        await put(5, { at: DAY2 - 5 });
        clock.set(DAY3);
        await put(6, { at: DAY3 - 1 });
        seqOf = (n) => byN.get(n)!;
      });

      it('finds records by queue id, Message-ID, recipient and domain, oldest first', async () => {
        expect(await query(log, { queueId: 'Q1' })).toEqual([seqOf(1), seqOf(3), seqOf(4)]);
        expect(await query(log, { messageId: '<m1@clinic.test>' })).toEqual([seqOf(1), seqOf(4)]);
        expect(await query(log, { recipient: 'USER4@partner1.TEST' })).toEqual([seqOf(4)]);
        expect(await query(log, { domain: 'Partner1.test' })).toEqual([seqOf(1), seqOf(2), seqOf(4)]);
        expect(await query(log, { domain: 'partner0.test' })).toEqual([seqOf(3 + 3)]);
        expect(await query(log, { queueId: 'nope' })).toEqual([]);
        expect(await query(log, { recipient: 'nobody@nowhere.test' })).toEqual([]);
      });

      it('filters by time range, sender, kinds and limit, and combines conditions', async () => {
        expect(await query(log, { from: DAY1 - 500, to: DAY2 - 5 })).toEqual([seqOf(2), seqOf(3), seqOf(4)]);
        expect(await query(log, { from: DAY2 - 10 })).toEqual([seqOf(4), seqOf(5), seqOf(6)]);
        expect(await query(log, { to: DAY1 })).toEqual([seqOf(1), seqOf(2), seqOf(3)]);
        expect(await query(log, { sender: 'sender@CLINIC.test' })).toEqual([seqOf(1), seqOf(2), seqOf(5), seqOf(6)]);
        expect(await query(log, { sender: '' })).toEqual([seqOf(4)]);
        expect(await query(log, { kinds: ['admin-action'] as EvidenceKind[] })).toEqual([seqOf(3)]);
        expect(await query(log, { limit: 2 })).toEqual([seqOf(1), seqOf(2)]);
        expect(await query(log, { queueId: 'Q1', kinds: ['recipient-outcome'] })).toEqual([seqOf(1), seqOf(4)]);
        expect(await query(log, { queueId: 'Q1', from: DAY1 })).toEqual([seqOf(4)]);
        expect(await query(log, { domain: 'partner1.test', messageId: '<m1@clinic.test>' })).toEqual([seqOf(1), seqOf(4)]);
        expect(await query(log, { domain: 'partner1.test', limit: 1 })).toEqual([seqOf(1)]);
      });

      it('answers from a second process too', async () => {
        const peer = await harness.peer();
        expect(await query(peer, { queueId: 'Q1' })).toEqual([seqOf(1), seqOf(3), seqOf(4)]);
        expect(await query(peer, { domain: 'partner0.test' })).toEqual([seqOf(6)]);
      });
    });

    it('prunes whole sealed days before the given day, keeps a base and still verifies', async () => {
      const d1 = await log.appendEvidence([outcomeInput(1), outcomeInput(2)]);
      clock.set(DAY2);
      const d2 = await log.appendEvidence([outcomeInput(3, { queueId: 'Q1' })]);
      clock.set(DAY3);
      await log.appendEvidence([outcomeInput(4)]);
      const anchorsBefore = await log.evidenceAnchors();

      const result = await log.pruneEvidence('2026-03-11');
      expect(result.days).toEqual(['2026-03-10']);
      expect(result.records).toBe(2);
      expect(result.anchors).toEqual([anchorsBefore[0]]);
      expect(result.base).toEqual(pruneBase(anchorsBefore[0]!, DAY3));
      expect(result.base).toMatchObject({ prunedThrough: '2026-03-10', lastSeq: 2, lastHash: d1[1]!.hash });
      expect(await log.evidenceBase()).toEqual(result.base);
      expect(await log.evidenceDays()).toEqual(['2026-03-11', '2026-03-12']);
      expect((await log.evidenceAnchors()).map((a) => a.day)).toEqual(['2026-03-11']);
      expect(await log.readEvidenceDay('2026-03-10')).toEqual([]);
      expect(await query(log, { queueId: 'Q1' })).toEqual([d2[0]!.seq]);
      expect(await query(log, {})).toEqual([3, 4]);
      expect(await verifyEvidence(log)).toMatchObject({ ok: true, records: 2, days: 2 });

      // The caller records the prune; the chain carries on.
      const [pruned] = await log.appendEvidence([{ kind: 'evidence-pruned', at: DAY3, queueId: null, messageId: null, recipient: null, sender: null, actor: 'cli:test', data: { days: result.days } }]);
      expect(pruned!.seq).toBe(5);
      expect(await verifyEvidence(log)).toMatchObject({ ok: true, records: 3 });

      // Nothing more to remove before day 2; the open day is never removed, whatever the cutoff.
      const none = await log.pruneEvidence('2026-03-11');
      expect(none).toMatchObject({ days: [], records: 0, anchors: [], base: result.base });
      const far = await log.pruneEvidence('2030-01-01');
      expect(far.days).toEqual(['2026-03-11']);
      expect(await log.evidenceDays()).toEqual(['2026-03-12']);
      expect((await log.evidenceHead())!.seq).toBe(5);
      expect(await verifyEvidence(log)).toMatchObject({ ok: true, records: 2, openDay: '2026-03-12' });
    });
  });
}
