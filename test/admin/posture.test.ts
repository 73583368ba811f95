import { partnerPostureCheck, postureRow } from '../../src/admin/posture';
import type { CheckReport, MxReport } from '../../src/outbound/check';
import type { PostureDomain } from '../../src/report/build';

function mx(host: string, extra: Partial<MxReport> = {}): MxReport {
  return {
    host,
    preference: 10,
    addresses: ['127.0.0.9'],
    address: '127.0.0.9',
    port: 25,
    starttls: true,
    tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', group: 'x25519' },
    certificate: null,
    stsMatch: null,
    compliant: true,
    classification: null,
    code: 'compliant',
    reason: 'ok',
    offered: null,
    dane: null,
    ...extra,
  };
}

function report(domain: string, extra: Partial<CheckReport> = {}): CheckReport {
  return {
    domain,
    verdict: 'deliver',
    reason: 'a compliant MX',
    code: 'compliant-mx',
    via: `mx.${domain}`,
    policy: { source: 'default', mode: null, id: null, level: 'encrypt' },
    mtaSts: { record: null, policy: null, source: null, error: null },
    mx: [mx(`mx.${domain}`)],
    wouldFail: [],
    daneEnabled: false,
    ...extra,
  };
}

const domain = (name: string, recipients = 1): PostureDomain => ({ domain: name, recipients, negotiated: [{ protocol: 'TLSv1.2', cipher: 'ECDHE-RSA-AES128-GCM-SHA256', count: recipients }] });

describe('partner posture', () => {
  it('puts the check beside what the period negotiated, naming the policy as the report does', () => {
    const sts = report('partner.example', { policy: { source: 'mta-sts', mode: 'testing', id: 'x', level: 'verify' } });
    expect(postureRow(domain('partner.example', 3), sts)).toEqual({
      domain: 'partner.example',
      recipients: 3,
      verdict: 'deliver',
      reason: 'a compliant MX',
      policy: 'mta-sts-testing',
      mx: [{ host: 'mx.partner.example', protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', compliant: true }],
      negotiated: [{ protocol: 'TLSv1.2', cipher: 'ECDHE-RSA-AES128-GCM-SHA256', count: 3 }],
    });
    const dane = report('dane.example', { mx: [mx('mx.dane.example', { dane: { state: 'secure-tlsa', records: [], match: null, reason: 'r' } })] });
    expect(postureRow(domain('dane.example'), dane).policy).toBe('dane');
    const bad = report('legacy.example', {
      verdict: 'divert',
      reason: 'no STARTTLS',
      mx: [mx('mx.legacy.example', { tls: null, compliant: false })],
      policy: { source: 'domain-rule', mode: null, id: null, level: 'verify' },
    });
    expect(postureRow(domain('legacy.example'), bad)).toMatchObject({ verdict: 'divert', policy: 'domain-rule', mx: [{ host: 'mx.legacy.example', protocol: null, cipher: null, compliant: false }] });
  });

  it('checks at most `concurrency` domains at once and keeps their order', async () => {
    let running = 0;
    let most = 0;
    const check = async (name: string): Promise<CheckReport> => {
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, name.length % 3));
      running--;
      return report(name);
    };
    const names = Array.from({ length: 9 }, (_, i) => `d${'x'.repeat(i)}.example`);
    const rows = await partnerPostureCheck({} as never, { concurrency: 2, check })(names.map((n) => domain(n)));
    expect(rows.map((r) => r.domain)).toEqual(names);
    expect(most).toBe(2);
    expect(await partnerPostureCheck({} as never, { check })([])).toEqual([]);
  });

  it('turns a failed or stuck check into a row with verdict null and the reason', async () => {
    const check = (name: string): Promise<CheckReport> =>
      name === 'broken.example' ? Promise.reject(new Error('DNS lookup failed: SERVFAIL')) : name === 'stuck.example' ? new Promise<CheckReport>(() => undefined) : Promise.resolve(report(name));
    const rows = await partnerPostureCheck({} as never, { check, timeoutMs: 50 })([domain('broken.example', 4), domain('ok.example'), domain('stuck.example')]);
    expect(rows[0]).toEqual({
      domain: 'broken.example',
      recipients: 4,
      verdict: null,
      reason: 'DNS lookup failed: SERVFAIL',
      policy: null,
      mx: [],
      negotiated: domain('broken.example', 4).negotiated,
    });
    expect(rows[1]).toMatchObject({ domain: 'ok.example', verdict: 'deliver' });
    expect(rows[2]).toMatchObject({ domain: 'stuck.example', verdict: null, reason: 'the check of stuck.example did not finish within 50 ms' });
  });

  it('runs checkDomain over the runtime it is given', async () => {
    const runtime = { planner: { planDelivery: async (name: string) => Promise.reject(new Error(`no resolver for ${name}`)) }, sessionOptions: {} };
    const rows = await partnerPostureCheck(runtime as never)([domain('partner.example')]);
    expect(rows).toEqual([expect.objectContaining({ domain: 'partner.example', verdict: null, reason: 'no resolver for partner.example' })]);
  });
});
