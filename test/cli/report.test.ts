import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { parse } from 'csv-parse/sync';
import type { LoadedConfig } from '../../src/config/load';
import type { ReportData } from '../../src/report/types';
import type { Store } from '../../src/store/types';
import { MemoryEvidenceLog, outcome, POLICY, TLS12, TLS13 } from '../report/evidence-fixture';
import { runCliInProcess } from './in-process';

/** `sealgate report` in this process, over an in-memory evidence log standing in for the store. */

const log = new MemoryEvidenceLog();
const FROM = Date.parse('2026-11-02T00:00:00Z');
log.append(
  [
    outcome({ at: FROM + 1000, queueId: 'q1', recipient: 'a@partner.example', outcome: 'delivered', tls: TLS13, policy: POLICY.enforce }),
    outcome({ at: FROM + 2000, queueId: 'q1', recipient: 'b@partner.example', outcome: 'delivered', tls: TLS12, policy: POLICY.enforce }),
    outcome({ at: FROM + 3000, queueId: 'q2', recipient: 'c@legacy.example', sender: 'other@clinic.test', outcome: 'bounced', reason: 'rcpt-550' }),
  ],
  FROM + 3000,
);

jest.mock('../../src/cli/context', () => {
  const actual = jest.requireActual<typeof import('../../src/cli/context')>('../../src/cli/context');
  return {
    ...actual,
    withStore: async <T>(command: Command, run: (store: Store, loaded: LoadedConfig) => Promise<T>): Promise<T> => run(log as unknown as Store, actual.loadCliConfig(command)),
  };
});

let dir: string;
let configFile: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-report-cli-'));
  configFile = path.join(dir, 'sealgate.yaml');
  writeFileSync(
    configFile,
    JSON.stringify({
      hostname: 'relay.clinic.test',
      listeners: [{ name: 'smtp', port: 0, tls: 'starttls', auth: 'required' }],
      queue: { backend: 'file', path: path.join(dir, 'queue') },
      log: { level: 'error' },
      admin: { port: 1 },
    }),
  );
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = (...args: string[]) => runCliInProcess(configFile, ['report', ...args]);

describe('sealgate report', () => {
  it('prints the JSON report to stdout by default', async () => {
    const res = await run('--from', '2026-11-02', '--to', '2026-11-02', '--no-posture');
    expect(res.code).toBe(0);
    const data = JSON.parse(res.stdout) as ReportData;
    expect(data).toMatchObject({ relay: 'relay.clinic.test', period: { from: '2026-11-02T00:00:00.000Z', to: '2026-11-03T00:00:00.000Z' }, posture: null });
    expect(data.totals).toEqual({ delivered: 2, diverted: 0, bounced: 1, deferred: 0, messages: 2, recipients: 3 });
  });

  it('filters by sender and domain', async () => {
    const bySender = JSON.parse((await run('--from', '2026-11-02', '--to', '2026-11-02', '--sender', 'Other@Clinic.test', '--no-posture')).stdout) as ReportData;
    expect(bySender.totals).toMatchObject({ bounced: 1, delivered: 0, messages: 1 });
    const byDomain = JSON.parse((await run('--from', '2026-11-01', '--to', '2026-11-30', '--domain', 'partner.example', '--no-posture')).stdout) as ReportData;
    expect(byDomain.domains.map((d) => d.domain)).toEqual(['partner.example']);
  });

  it('writes CSV to --out, readable by the owner and group only', async () => {
    const out = path.join(dir, 'report.csv');
    const res = await run('--from', '2026-11-02T00:00:00Z', '--to', '2026-11-03T00:00:00Z', '--format', 'csv', '--out', out, '--no-posture');
    expect(res.code).toBe(0);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain(`wrote ${out} (csv,`);
    const rows = parse<Record<string, string>>(readFileSync(out, 'utf8'), { columns: true });
    expect(rows.map((r) => [r.domain, r.delivered, r['delivered TLSv1.3'], r['delivered TLSv1.2'], r.bounced])).toEqual([
      ['legacy.example', '0', '0', '0', '1'],
      ['partner.example', '2', '1', '1', '0'],
      ['TOTAL', '2', '1', '1', '1'],
    ]);
    expect(statSync(out).mode & 0o777).toBe(0o640);
  });

  it('runs the posture checks unless --no-posture, a failed check giving verdict null', async () => {
    // No resolver answers in this test: the checks fail, quickly, and the report still comes.
    writeFileSync(
      path.join(dir, 'posture.yaml'),
      JSON.stringify({
        listeners: [{ name: 'smtp', port: 0, tls: 'starttls', auth: 'required' }],
        queue: { backend: 'file', path: path.join(dir, 'queue') },
        log: { level: 'error' },
        admin: { port: 1 },
        dns: { servers: ['127.0.0.1:1'], timeout: 200, tries: 1 },
        reports: { postureDomains: 1 },
      }),
    );
    const res = await runCliInProcess(path.join(dir, 'posture.yaml'), ['report', '--from', '2026-11-02', '--to', '2026-11-02']);
    expect(res.code).toBe(0);
    const data = JSON.parse(res.stdout) as ReportData;
    expect(data.posture).toEqual([expect.objectContaining({ domain: 'partner.example', recipients: 2, verdict: expect.anything() })]);
  });

  it('exits 2 for bad dates, an empty period and an unknown format', async () => {
    expect(await run('--from', '2026-11-31', '--to', '2026-12-01')).toMatchObject({ code: 2, stderr: expect.stringContaining('not a calendar date') });
    expect(await run('--from', '2026-11-05', '--to', '2026-11-01')).toMatchObject({ code: 2, stderr: expect.stringContaining('period is empty') });
    expect(await run('--from', '2026-11-05T10:00:00', '--to', '2026-11-06')).toMatchObject({ code: 2, stderr: expect.stringContaining('with its zone') });
    expect(await run('--from', '2026-11-01', '--to', '2026-11-02', '--format', 'xlsx')).toMatchObject({ code: 2, stderr: expect.stringContaining('not one of json, csv, html, pdf') });
    expect((await run('--to', '2026-11-02')).code).toBe(2);
  });
});
