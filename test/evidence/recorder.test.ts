import fs, { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { createAuditLog } from '../../src/evidence/audit-log';
import type { AuditEntry } from '../../src/evidence/delivery';
import { actionRecord, createEvidenceRecorder, fallbackSubject, messageSubject, outcomeRecord, portalEventRecord } from '../../src/evidence/recorder';
import type { Logger } from '../../src/log/logger';
import type { EvidenceRecord, EvidenceRecordInput, PortalEvent, RecipientResult } from '../../src/store/types';

/** The mapping of each producer's record into the evidence log, and the recorder's order: log first, mirror after. */

const AT = Date.UTC(2026, 10, 29, 12, 0, 0);
const message = { id: '01KB0000000000000000AA', from: 'dr@clinic.example', headers: { messageId: '<m1@clinic.example>', subject: 'never in evidence' } };
const delivered: RecipientResult = {
  address: 'Pat@Partner.Example',
  outcome: 'delivered',
  evidence: {
    at: AT,
    outcome: 'delivered',
    reason: 'delivered',
    mx: 'mx.partner.example',
    ip: '127.0.0.5',
    reply: '250 ok',
    tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', group: 'x25519' },
    subject: 'must never reach the evidence log',
  },
};

/** An in-memory stand-in for the store's evidence log: what was appended, in order; fails while `down`. */
function fakeLog(events: string[] = []) {
  const appended: EvidenceRecordInput[] = [];
  const log = {
    down: false,
    appended,
    async appendEvidence(records: readonly EvidenceRecordInput[]): Promise<EvidenceRecord[]> {
      if (log.down) throw new Error('ENOSPC: no space left on device');
      events.push(`append ${records.length}`);
      appended.push(...records);
      return [];
    },
  };
  return log;
}

describe('evidence records', () => {
  test('a recipient outcome: indexed keys, the evidence time, actor relay, and data the audit entry unchanged', () => {
    const record = outcomeRecord(message, delivered);
    expect(record).toEqual({
      kind: 'recipient-outcome',
      at: AT,
      queueId: message.id,
      messageId: '<m1@clinic.example>',
      recipient: 'pat@partner.example',
      sender: 'dr@clinic.example',
      actor: 'relay',
      data: {
        queueId: message.id,
        messageId: '<m1@clinic.example>',
        recipient: 'Pat@Partner.Example',
        outcome: 'delivered',
        reason: 'delivered',
        mx: 'mx.partner.example',
        ip: '127.0.0.5',
        tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', group: 'x25519' },
        certificate: null,
        policy: null,
        reply: '250 ok',
        at: '2026-11-29T12:00:00.000Z',
        mxAttempts: [],
      },
    });
    expect(JSON.stringify(record)).not.toContain('never');
  });

  test('the null sender and a message without Message-ID', () => {
    expect(outcomeRecord({ id: 'q', from: '', headers: {} }, delivered)).toMatchObject({ sender: '', messageId: null, data: { messageId: null } });
  });

  test('an admin action: data the entry as the audit file holds it, keys from the subject, else from the entry', () => {
    const entry = { actor: 'ops', action: 'queue-delete', id: message.id };
    expect(actionRecord(entry, AT, messageSubject(message), 'admin:ops')).toEqual({
      kind: 'admin-action',
      at: AT,
      queueId: message.id,
      messageId: '<m1@clinic.example>',
      recipient: null,
      sender: 'dr@clinic.example',
      actor: 'admin:ops',
      data: entry,
    });
    const item = { queueId: 'q2', messageId: undefined, recipient: 'X@Partner.Example', from: 'a@clinic.example' };
    expect(actionRecord({ actor: 'cli:root', action: 'fallback-delete', id: 'f1', queueId: 'q2' }, AT, fallbackSubject(item))).toMatchObject({
      actor: 'cli:root',
      queueId: 'q2',
      recipient: 'x@partner.example',
      sender: 'a@clinic.example',
    });
    // No subject: a fallback entry's own queueId and recipient still index it; a config action has none.
    expect(actionRecord({ actor: 'ops', action: 'content-read', id: 'f1', queueId: 'q3', recipient: 'Y@P.Example' }, AT)).toMatchObject({ queueId: 'q3', recipient: 'y@p.example', actor: 'ops' });
    expect(actionRecord({ actor: 'ops', action: 'config-reload', id: 'digest' }, AT)).toMatchObject({ queueId: null, messageId: null, recipient: null, sender: null });
  });

  test('a portal event: the stored trail entry as data, the item keys beside it', () => {
    const event: PortalEvent = { itemId: 'f1', seq: 2, at: AT, type: 'link.opened', actor: 'recipient', ip: '127.0.0.9', uaHash: 'abcd', prevHash: 'p', hash: 'h' };
    expect(portalEventRecord(event, { queueId: 'q1', recipient: 'Pat@Partner.Example', sender: 'dr@clinic.example', messageId: '<m1@clinic.example>' })).toEqual({
      kind: 'portal-event',
      at: AT,
      queueId: 'q1',
      messageId: '<m1@clinic.example>',
      recipient: 'pat@partner.example',
      sender: 'dr@clinic.example',
      actor: 'recipient',
      data: event,
    });
  });
});

describe('createEvidenceRecorder', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-recorder-'));
  });
  afterEach(() => {
    jest.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  const lines = (file: string) =>
    readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, any>);

  test('outcomes go to the log first, then the audit file gets the same lines as before, without an fsync of its own', async () => {
    const events: string[] = [];
    const log = fakeLog(events);
    const file = path.join(dir, 'audit.log');
    const mirror = createAuditLog<AuditEntry>(file, pino({ enabled: false }), { fsync: false });
    const recordAll = mirror.recordAll.bind(mirror);
    mirror.recordAll = (entries) => {
      events.push(`mirror ${entries.length}`);
      return recordAll(entries);
    };
    const fsyncs = [jest.spyOn(fs, 'fsync'), jest.spyOn(fs, 'fsyncSync')];
    const recorder = createEvidenceRecorder({ log, mirror, logger: pino({ enabled: false }) });
    await recorder.recordOutcomes(message, [delivered, { ...delivered, address: 'b@partner.example' }]);
    await recorder.recordAction({ actor: 'ops', action: 'queue-hold', id: message.id }, { queueId: message.id }, 'admin:ops');
    expect(fsyncs.map((spy) => spy.mock.calls.length)).toEqual([0, 0]);
    await recorder.close();
    expect(events).toEqual(['append 2', 'mirror 2', 'append 1']);
    expect(log.appended.map((r) => [r.kind, r.recipient, r.actor])).toEqual([
      ['recipient-outcome', 'pat@partner.example', 'relay'],
      ['recipient-outcome', 'b@partner.example', 'relay'],
      ['admin-action', null, 'admin:ops'],
    ]);
    const written = lines(file);
    expect(written.map((l) => l.event)).toEqual(['audit', 'audit', 'admin-action']);
    expect(written[0]!.audit).toEqual(log.appended[0]!.data);
    expect(written[2]!.admin).toEqual({ actor: 'ops', action: 'queue-hold', id: message.id });
  });

  test('the audit file keeps its fsync by default (its other users)', async () => {
    const spy = jest.spyOn(fs, 'fsyncSync');
    const audit = createAuditLog(path.join(dir, 'audit.log'), pino({ enabled: false }));
    audit.action({ actor: 'ops', action: 'x', id: 'y' });
    await audit.close();
    expect(spy).toHaveBeenCalledTimes(1);
  });

  test('when the log refuses the append nothing is mirrored and the caller sees the error (the outcome is then not recorded)', async () => {
    const log = fakeLog();
    log.down = true;
    const file = path.join(dir, 'audit.log');
    const recorder = createEvidenceRecorder({ log, mirror: createAuditLog<AuditEntry>(file, pino({ enabled: false }), { fsync: false }), logger: pino({ enabled: false }) });
    await expect(recorder.recordOutcomes(message, [delivered])).rejects.toThrow('ENOSPC');
    await expect(recorder.recordAction({ actor: 'ops', action: 'queue-hold', id: 'q' })).rejects.toThrow('ENOSPC');
    await recorder.close();
    expect(readFileSync(file, 'utf8')).toBe('');
  });

  test('a mirror that fails after the append is logged, not thrown: the log holds the record', async () => {
    const log = fakeLog();
    const warnings: Array<Record<string, unknown>> = [];
    const logger = { warn: (fields: Record<string, unknown>) => warnings.push(fields) } as unknown as Logger;
    const mirror = { record: () => undefined, recordAll: () => Promise.reject(new Error('EIO')), action: () => undefined, close: async () => undefined };
    const recorder = createEvidenceRecorder({ log, mirror, logger });
    await recorder.recordOutcomes(message, [delivered]);
    expect(log.appended).toHaveLength(1);
    expect(warnings).toEqual([expect.objectContaining({ event: 'audit-mirror-failed', err: 'EIO' })]);
  });

  test('a result with no recipients appends nothing', async () => {
    const log = fakeLog();
    const recorder = createEvidenceRecorder({ log, mirror: createAuditLog<AuditEntry>(null, pino({ enabled: false })), logger: pino({ enabled: false }) });
    await recorder.recordOutcomes(message, []);
    expect(log.appended).toEqual([]);
  });
});
