import { describe as describeAuditEntry } from '../../src/cli/commands/audit';
import { formatReport } from '../../src/cli/commands/check';
import type { AuditEntry } from '../../src/evidence/delivery';
import type { CheckReport, MxReport } from '../../src/outbound/check';
import { ConnectionPool } from '../../src/outbound/connection-pool';

const mx: MxReport = {
  host: 'mx.dane.test',
  preference: 10,
  addresses: ['127.0.0.1'],
  address: '127.0.0.1',
  port: 25,
  starttls: true,
  tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256', group: 'P-256' },
  certificate: null,
  stsMatch: null,
  compliant: true,
  classification: null,
  code: 'compliant',
  reason: 'TLSv1.3 TLS_AES_128_GCM_SHA256',
  offered: null,
  dane: null,
};
const report: CheckReport = {
  domain: 'dane.test',
  verdict: 'deliver',
  reason: 'deliver via mx.dane.test',
  code: 'compliant-mx',
  via: 'mx.dane.test',
  policy: { source: 'default', mode: null, id: null, level: 'encrypt' },
  mtaSts: { record: null, policy: null, source: null, error: null },
  mx: [mx],
  wouldFail: [],
  daneEnabled: false,
};

describe('sealgate check text output: DANE', () => {
  it('says DANE is off, and why, without a validating resolver', () => {
    expect(formatReport(report)).toContain('DANE:     off (dns.validating is false)');
  });

  it('with DANE on, shows each MX host state, records and the record matched', () => {
    const record = { usage: 3, selector: 1, matchingType: 1, data: 'ab'.repeat(32) };
    const text = formatReport({ ...report, daneEnabled: true, mx: [{ ...mx, dane: { state: 'secure-tlsa', records: [record], match: { ...record, depth: 0 }, reason: '1 usable TLSA record' } }] });
    expect(text).toContain('DANE:     on');
    expect(text).toContain('DANE secure-tlsa (3 1 1); matched 3 1 1 at depth 0: 1 usable TLSA record');
  });
});

describe('connection pool keys with DANE', () => {
  it('a session judged under one TLSA RRset is not reused under another, or without DANE', () => {
    const plain = ConnectionPool.key('mx.dane.test', 25, false, 'mx.dane.test');
    expect(plain).toBe(ConnectionPool.key('mx.dane.test', 25, false, 'mx.dane.test', null));
    const a = ConnectionPool.key('mx.dane.test', 25, false, 'mx.dane.test', 'secure-tlsa:3.1.1.aa');
    const b = ConnectionPool.key('mx.dane.test', 25, false, 'mx.dane.test', 'secure-tlsa:3.1.1.bb');
    expect(new Set([plain, a, b]).size).toBe(3);
  });
});

describe('sealgate audit text: DANE', () => {
  const base: AuditEntry = {
    queueId: 'q1',
    messageId: null,
    recipient: 'a@dane.test',
    outcome: 'delivered',
    reason: 'delivered',
    mx: 'mx2.dane.test',
    ip: '127.0.0.2',
    tls: null,
    certificate: null,
    policy: { source: 'default', mode: null, id: null, level: 'encrypt' },
    reply: '250 ok',
    at: '2026-01-01T00:00:00.000Z',
    mxAttempts: [],
  };

  it('shows the DANE state of the MX used, the record matched and why other MX hosts failed', () => {
    const text = describeAuditEntry({
      ...base,
      policy: { ...base.policy!, dane: 'secure-tlsa' },
      mxAttempts: [
        {
          mx: 'mx1.dane.test',
          ip: '127.0.0.1',
          at: 0,
          class: 'non-compliant',
          code: 'dane-no-match',
          reason: 'DANE: no match',
          starttls: true,
          tls: null,
          certificate: null,
          reply: null,
          dane: { state: 'secure-tlsa', match: null, result: 'dane-no-match' },
        },
        {
          mx: 'mx2.dane.test',
          ip: '127.0.0.2',
          at: 0,
          class: 'ok',
          code: 'ok',
          reason: 'done',
          starttls: true,
          tls: null,
          certificate: null,
          reply: '250 ok',
          dane: { state: 'secure-tlsa', match: { usage: 3, selector: 1, matchingType: 1, data: 'ab', depth: 0 }, result: 'match' },
        },
      ],
    });
    expect(text).toContain('policy default, level encrypt, DANE secure-tlsa');
    expect(text).toContain('DANE TLSA 3 1 1 matched at depth 0');
    expect(text).toContain('tried mx1.dane.test [127.0.0.1]: non-compliant, dane-no-match: DANE: no match (DANE secure-tlsa, dane-no-match)');
  });

  it('says nothing about DANE when it was off', () => {
    expect(describeAuditEntry(base)).not.toContain('DANE');
  });
});
