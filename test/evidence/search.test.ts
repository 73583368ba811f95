import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../src/log/logger';
import { evidenceQuery, isSearchError, searchEvidence } from '../../src/evidence/search';
import { FileStore } from '../../src/store/file/file-store';
import type { EvidenceRecordInput } from '../../src/store/types';

/** The parameters of `sealgate evidence search` / GET /evidence, and the bounded answer over the file store's log. */

describe('evidenceQuery', () => {
  test('ids, addresses and domain as the log stores them; dates are UTC days, a bare --to date includes its day', () => {
    expect(
      evidenceQuery({
        queueId: 'Q1',
        messageId: 'm1@clinic.example',
        recipient: 'Pat@Partner.Example',
        domain: 'Partner.Example.',
        sender: '<>',
        from: '2026-11-01',
        to: '2026-11-30',
        kind: 'recipient-outcome, admin-action',
      }),
    ).toEqual({
      queueId: 'Q1',
      messageId: '<m1@clinic.example>',
      recipient: 'pat@partner.example',
      domain: 'partner.example',
      sender: '',
      from: Date.UTC(2026, 10, 1),
      to: Date.UTC(2026, 11, 1),
      kinds: ['recipient-outcome', 'admin-action'],
      limit: 1000,
    });
    expect(evidenceQuery({ from: '2026-11-01T10:00:00Z', to: '2026-11-01T11:00:00Z', limit: 5 })).toEqual({ from: Date.UTC(2026, 10, 1, 10), to: Date.UTC(2026, 10, 1, 11), limit: 5 });
  });

  test('refusals name the parameter', () => {
    expect(evidenceQuery({ from: 'yesterday' })).toMatchObject({ field: 'from' });
    expect(evidenceQuery({ from: '2026-11-02', to: '2026-11-01' })).toMatchObject({ field: 'to' });
    expect(evidenceQuery({ kind: 'recipient-outcome,mail-body' })).toMatchObject({ field: 'kind' });
    expect(evidenceQuery({ limit: 0 })).toMatchObject({ field: 'limit' });
    expect(evidenceQuery({ limit: 100_001 })).toMatchObject({ field: 'limit' });
    expect(isSearchError(evidenceQuery({}))).toBe(false);
  });
});

describe('searchEvidence over the file store', () => {
  let dir: string;
  let store: FileStore;
  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-search-'));
    store = new FileStore({ path: path.join(dir, 'queue'), keepFinished: 60_000, logger: silentLogger() });
    await store.open();
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const record = (queueId: string, recipient: string, at: number): EvidenceRecordInput => ({
    kind: 'recipient-outcome',
    at,
    queueId,
    messageId: null,
    recipient,
    sender: 'a@clinic.example',
    actor: 'relay',
    data: { queueId, recipient, outcome: 'delivered' },
  });

  test('oldest first, every condition must hold, and the limit is kept with truncated set', async () => {
    const now = Date.now();
    await store.appendEvidence([record('q1', 'a@one.example', now), record('q2', 'b@two.example', now + 1), record('q3', 'c@two.example', now + 2), record('q4', 'd@two.example', now + 3)]);
    const all = await searchEvidence(store, evidenceQuery({ domain: 'two.example' }) as never);
    expect(all).toMatchObject({ truncated: false });
    expect(all.records.map((r) => r.queueId)).toEqual(['q2', 'q3', 'q4']);
    const two = await searchEvidence(store, evidenceQuery({ domain: 'two.example', limit: 2 }) as never);
    expect(two.truncated).toBe(true);
    expect(two.records.map((r) => r.queueId)).toEqual(['q2', 'q3']);
    const exact = await searchEvidence(store, evidenceQuery({ domain: 'two.example', limit: 3 }) as never);
    expect(exact.truncated).toBe(false);
    expect((await searchEvidence(store, evidenceQuery({ domain: 'two.example', recipient: 'C@two.example' }) as never)).records.map((r) => r.queueId)).toEqual(['q3']);
    expect((await searchEvidence(store, evidenceQuery({ queueId: 'q1', kind: 'admin-action' }) as never)).records).toEqual([]);
  });
});
