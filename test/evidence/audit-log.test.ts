import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { parseConfig } from '../../src/config/load';
import { createAuditLog } from '../../src/evidence/audit-log';
import { toAuditEntry, type AuditEntry } from '../../src/evidence/delivery';

describe('toAuditEntry', () => {
  it('keeps the fixed evidence names, nulls what is missing, and drops facts outside the record', () => {
    const entry = toAuditEntry('q1', undefined, 'a@partner.example', {
      at: Date.UTC(2026, 10, 29, 12, 0, 0),
      outcome: 'diverted',
      reason: 'starttls-not-offered',
      mx: 'mx.partner.example',
      subject: 'must never reach the audit file',
    });
    expect(entry).toEqual({
      queueId: 'q1',
      messageId: null,
      recipient: 'a@partner.example',
      outcome: 'diverted',
      reason: 'starttls-not-offered',
      mx: 'mx.partner.example',
      ip: null,
      tls: null,
      certificate: null,
      policy: null,
      reply: null,
      at: '2026-11-29T12:00:00.000Z',
      mxAttempts: [],
    });
  });
});

describe('createAuditLog', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-audit-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('appends one JSON line per outcome and per admin action to its own file', async () => {
    const file = path.join(dir, 'sub', 'audit.log');
    const first = createAuditLog<AuditEntry>(file, pino({ enabled: false }));
    first.record(toAuditEntry('q1', '<m1@clinic.example>', 'a@partner.example', { at: 0, outcome: 'delivered', reason: 'delivered' }));
    await first.close();
    const second = createAuditLog<AuditEntry>(file, pino({ enabled: false }));
    second.action({ actor: 'ops', action: 'release', id: 'q1' });
    await second.close();

    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ event: 'audit', audit: { queueId: 'q1', messageId: '<m1@clinic.example>', outcome: 'delivered' } });
    expect(lines[1]).toMatchObject({ event: 'admin-action', admin: { actor: 'ops', action: 'release', id: 'q1' } });
  });

  it('writes into the main log when no audit file is configured', async () => {
    const seen: Array<Record<string, unknown>> = [];
    const logger = pino({ base: null }, { write: (line: string) => seen.push(JSON.parse(line) as Record<string, unknown>) });
    const audit = createAuditLog(null, logger);
    audit.record({ queueId: 'q2' });
    audit.action({ actor: 'cli:root', action: 'delete', id: 'q2' });
    await audit.close();
    expect(seen).toEqual([
      expect.objectContaining({ event: 'audit', audit: { queueId: 'q2' } }),
      expect.objectContaining({ event: 'admin-action', admin: { actor: 'cli:root', action: 'delete', id: 'q2' } }),
    ]);
  });
});

describe('audit.file', () => {
  const base = path.join(os.tmpdir(), 'sealgate-config');
  const minimal = { listeners: [{ name: 'sub', port: 2587, tls: 'starttls', auth: 'required' }] };

  it('defaults to audit.log in the folder that holds the queue', () => {
    expect(parseConfig(minimal, {}, base).audit.file).toBe(path.join(path.dirname(path.resolve(base, '../queue')), 'audit.log'));
    expect(parseConfig({ ...minimal, queue: { path: '/var/spool/sealgate/queue' } }, {}, base).audit.file).toBe('/var/spool/sealgate/audit.log');
  });

  it('keeps null (the main log) and resolves a given file against the config folder', () => {
    expect(parseConfig({ ...minimal, audit: { file: null } }, {}, base).audit.file).toBeNull();
    expect(parseConfig({ ...minimal, audit: { file: 'logs/audit.log' } }, {}, base).audit.file).toBe(path.join(base, 'logs', 'audit.log'));
  });

  it('has each line on disk when record() returns, before the caller records the outcome', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-audit-'));
    try {
      const file = path.join(dir, 'audit.log');
      const audit = createAuditLog<AuditEntry>(file, pino({ enabled: false }));
      audit.record(toAuditEntry('q3', undefined, 'b@partner.example', { at: 0, outcome: 'bounced', reason: 'rcpt-550' }));
      // No close, no flush: what a SIGKILL right now would leave.
      expect(readFileSync(file, 'utf8')).toContain('"queueId":"q3"');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
