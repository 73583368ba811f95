import { parse } from 'csv-parse/sync';
import type { FastifyInstance } from 'fastify';
import { buildAdminApp } from '../../src/admin/server';
import { parseConfig } from '../../src/config/load';
import { silentLogger } from '../../src/log/logger';
import type { PolicyRuntime } from '../../src/policy';
import type { ReportData } from '../../src/report/types';
import type { Store } from '../../src/store/types';
import { MemoryEvidenceLog, outcome, POLICY, TLS13 } from '../report/evidence-fixture';

/** GET /api/v1/reports with app.inject() over an in-memory evidence log. */

const TOKEN = 'reader-token-0123456789abcdef';
const FROM = Date.parse('2026-11-02T00:00:00Z');

let app: FastifyInstance;
let planned: string[];

beforeAll(async () => {
  const log = new MemoryEvidenceLog();
  log.append(
    [
      outcome({ at: FROM + 1000, queueId: 'q1', recipient: 'a@partner.example', outcome: 'delivered', tls: TLS13, policy: POLICY.enforce }),
      outcome({ at: FROM + 2000, queueId: 'q2', recipient: 'c@legacy.example', outcome: 'diverted', reason: 'starttls-not-offered' }),
    ],
    FROM + 2000,
  );
  planned = [];
  // The posture check goes through checkDomain over the admin API's policy runtime: here one that plans nothing.
  const policy = {
    planner: {
      planDelivery: async (domain: string) => {
        planned.push(domain);
        throw new Error(`no DNS for ${domain} in this test`);
      },
    },
    sessionOptions: {},
  } as unknown as PolicyRuntime;
  const config = parseConfig(
    { hostname: 'relay.clinic.test', listeners: [{ name: 'smtp', port: 0, tls: 'starttls', auth: 'required' }], admin: { tokens: [{ name: 'reader', token: TOKEN, scopes: ['read'] }] } },
    {},
    '/tmp',
  );
  app = await buildAdminApp({ config, store: log as unknown as Store, policy, logger: silentLogger() });
});

afterAll(async () => {
  await app.close();
});

const get = (query: string) => app.inject({ method: 'GET', url: `/api/v1/reports?${query}`, headers: { authorization: `Bearer ${TOKEN}` } });

describe('GET /api/v1/reports', () => {
  it('answers the JSON report of the period, the --to day included, without posture checks by default', async () => {
    const res = await get('from=2026-11-02&to=2026-11-02');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers['content-disposition']).toBe('inline; filename="sealgate-report-2026-11-02_2026-11-03.json"');
    const data = res.json<ReportData>();
    expect(data).toMatchObject({ relay: 'relay.clinic.test', period: { from: '2026-11-02T00:00:00.000Z', to: '2026-11-03T00:00:00.000Z' }, posture: null });
    expect(data.totals).toEqual({ delivered: 1, diverted: 1, bounced: 0, deferred: 0, messages: 2, recipients: 2 });
    expect(planned).toEqual([]);
  });

  it('answers CSV as a download that parses, filtered by domain', async () => {
    const res = await get('from=2026-11-01&to=2026-11-30&format=csv&domain=Legacy.Example');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(res.headers['content-disposition']).toBe('attachment; filename="sealgate-report-2026-11-01_2026-12-01-legacy.example.csv"');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    const rows = parse<Record<string, string>>(res.body, { columns: true });
    expect(rows.map((r) => [r.domain, r.diverted, r['diverted by reason']])).toEqual([
      ['legacy.example', '1', 'starttls-not-offered=1'],
      ['TOTAL', '1', 'starttls-not-offered=1'],
    ]);
  });

  it('runs the posture checks when asked, a failed check giving a row with verdict null', async () => {
    const res = await get('from=2026-11-02&to=2026-11-03&posture=true');
    expect(res.statusCode).toBe(200);
    expect(planned.sort()).toEqual(['legacy.example', 'partner.example']);
    expect(res.json<ReportData>().posture).toEqual([
      expect.objectContaining({ domain: 'legacy.example', recipients: 1, verdict: null, reason: 'no DNS for legacy.example in this test' }),
      expect.objectContaining({ domain: 'partner.example', recipients: 1, verdict: null, negotiated: [{ protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', count: 1 }] }),
    ]);
  });

  it('refuses bad dates, an empty period and an unknown format with 400 naming the field', async () => {
    expect(await get('from=2026-11-31&to=2026-12-01').then((r) => [r.statusCode, r.json().field])).toEqual([400, 'from']);
    expect(await get('from=2026-11-05&to=2026-11-02').then((r) => [r.statusCode, r.json().field, r.json().message])).toEqual([400, 'to', expect.stringContaining('period is empty')]);
    expect(await get('from=2026-11-02&to=2026-11-03&format=xlsx').then((r) => [r.statusCode, r.json().field])).toEqual([400, 'format']);
    expect(await get('to=2026-11-03').then((r) => [r.statusCode, r.json().field])).toEqual([400, 'from']);
    expect(await get('from=2026-11-02&to=2026-11-03&extra=1').then((r) => r.statusCode)).toBe(400);
  });

  it('needs a token with the read scope', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/reports?from=2026-11-02&to=2026-11-03' });
    expect(res.statusCode).toBe(401);
  });
});
