import { parse } from 'csv-parse/sync';
import { buildReport } from '../../src/report/build';
import { CSV_COLUMNS, neutraliseFormula, renderReportCsv } from '../../src/report/csv';
import type { ReportData } from '../../src/report/types';
import { attempt, MemoryEvidenceLog, outcome, POLICY, TLS12, TLS13 } from './evidence-fixture';

const FROM = Date.parse('2026-11-02T00:00:00Z');
const TO = Date.parse('2026-11-03T00:00:00Z');

async function report(): Promise<ReportData> {
  const log = new MemoryEvidenceLog();
  log.append(
    [
      outcome({ at: FROM, queueId: 'q1', recipient: 'a@partner.example', outcome: 'delivered', tls: TLS13, policy: POLICY.enforce }),
      outcome({ at: FROM + 1, queueId: 'q1', recipient: 'b@partner.example', outcome: 'deferred', reason: 'rcpt-451', policy: POLICY.testing }),
      outcome({ at: FROM + 2, queueId: 'q1', recipient: 'b@partner.example', outcome: 'delivered', tls: TLS12, policy: POLICY.testing }),
      outcome({ at: FROM + 3, queueId: 'q2', recipient: 'c@legacy.example', outcome: 'diverted', reason: 'starttls-not-offered' }),
      outcome({ at: FROM + 4, queueId: 'q3', recipient: 'd@legacy.example', outcome: 'diverted', reason: 'tls-profile', attempts: [attempt('certificate-name-mismatch'), attempt('tls-profile')] }),
      outcome({ at: FROM + 5, queueId: 'q4', recipient: 'e@legacy.example', outcome: 'diverted', reason: 'tls-profile' }),
      // A reason as an outside server or a crafted DNS answer might put it: a spreadsheet formula with a comma and quotes.
      outcome({ at: FROM + 6, queueId: 'q5', recipient: 'f@gone.example', outcome: 'bounced', reason: '=HYPERLINK("http://127.0.0.1/x","y")' }),
    ],
    FROM + 10,
  );
  return buildReport(log, { from: FROM, to: TO }, { relay: 'relay.test', now: TO });
}

describe('renderReportCsv', () => {
  it('writes one row per domain then TOTAL, that a CSV parser reads back', async () => {
    const rows = parse<Record<string, string>>(renderReportCsv(await report()), { columns: true });
    expect(Object.keys(rows[0]!)).toEqual([...CSV_COLUMNS]);
    expect(rows.map((r) => r.domain)).toEqual(['gone.example', 'legacy.example', 'partner.example', 'TOTAL']);
    expect(rows[2]).toEqual({
      domain: 'partner.example',
      messages: '1',
      delivered: '2',
      diverted: '0',
      bounced: '0',
      deferred: '1',
      'delivered TLSv1.3': '1',
      'delivered TLSv1.2': '1',
      'diverted by reason': '',
      'policy sources': 'mta-sts-testing=2; mta-sts-enforce=1',
      'certificate problems': '',
    });
    expect(rows[1]).toMatchObject({
      diverted: '3',
      'diverted by reason': 'tls-profile=2; starttls-not-offered=1',
      'policy sources': 'default=3',
      'certificate problems': 'certificate-name-mismatch=1',
    });
    expect(rows[3]).toEqual({
      domain: 'TOTAL',
      messages: '5',
      delivered: '2',
      diverted: '3',
      bounced: '1',
      deferred: '1',
      'delivered TLSv1.3': '1',
      'delivered TLSv1.2': '1',
      'diverted by reason': 'tls-profile=2; starttls-not-offered=1',
      'policy sources': 'default=4; mta-sts-testing=2; mta-sts-enforce=1',
      'certificate problems': 'certificate-name-mismatch=1',
    });
  });

  it('never leaves a cell a spreadsheet would run as a formula', async () => {
    const data = await report();
    data.domains[0]!.domain = '@SUM(A1:A9)';
    data.domains[0]!.divertedByReason = { '-cmd|calc': 1 };
    const rows = parse<Record<string, string>>(renderReportCsv(data), { columns: true });
    expect(rows[0]).toMatchObject({ domain: "'@SUM(A1:A9)", 'diverted by reason': "'-cmd|calc=1" });
    for (const row of rows) for (const cell of Object.values(row)) expect(cell).not.toMatch(/^[=+\-@\t\r]/);
    expect(['=1+1', '+1', '-1', '@x', '\tx', '\rx', 'plain', '', "'=x"].map(neutraliseFormula)).toEqual(["'=1+1", "'+1", "'-1", "'@x", "'\tx", "'\rx", 'plain', '', "'=x"]);
  });

  it('writes only the header and TOTAL for an empty period', async () => {
    const empty = await buildReport(new MemoryEvidenceLog(), { from: FROM, to: TO }, { relay: 'relay.test', now: TO });
    const rows = parse<Record<string, string>>(renderReportCsv(empty), { columns: true });
    expect(rows).toEqual([expect.objectContaining({ domain: 'TOTAL', messages: '0', delivered: '0', 'diverted by reason': '' })]);
  });
});
