import { decideCompliantOnlyOutcomes, decideOutcomes, deliveryMode, type CandidateAttempt, type NoticeOutcomeInput, type TriedAddress } from '../../src/outcome';

/** The rule for the relay's own mail to its staff (scheduled reports): compliant TLS or nothing, never the portal (pure). */

const tried = (mx: string, code: string, reply: string | null = null): TriedAddress => ({ mx, ip: '192.0.2.1', code, reason: `${code} at ${mx}`, reply });
const noSession = (mx: string, classification: 'non-compliant' | 'transient', code: string): CandidateAttempt<string> => ({ kind: 'no-session', classification, code, tried: [tried(mx, code)] });
const answered = (mx: string, outcome: 'delivered' | 'bounced' | 'deferred', reply: string): CandidateAttempt<string> => ({
  kind: 'transaction',
  session: mx,
  result: { kind: 'answered', recipients: new Map([[A, { outcome, reply }]]) },
  tried: [tried(mx, 'ok')],
});

const A = 'officer@clinic.test';
const deliver: NoticeOutcomeInput<string>['plan'] = { kind: 'deliver', hosts: [{ excluded: null }, { excluded: null }] };
const decide = (input: Partial<NoticeOutcomeInput<string>>) => decideCompliantOnlyOutcomes({ plan: deliver, recipients: [A], attempts: [], ...input }).get(A)!;

describe('deliveryMode: compliant-only', () => {
  it('a message marked compliantOnly is compliant-only, even if it were also marked as a notice', () => {
    expect(deliveryMode({ compliantOnly: { kind: 'report' } })).toBe('compliant-only');
    expect(deliveryMode({ compliantOnly: { kind: 'report' }, notice: { kind: 'portal-link' } })).toBe('compliant-only');
    expect(deliveryMode({ compliantOnly: undefined })).toBe('compliant');
  });
});

describe('decideCompliantOnlyOutcomes', () => {
  it('delivered on a compliant session, as the general rule says (reason delivered)', () => {
    const attempts = [answered('mx1', 'delivered', '250 ok')];
    expect(decide({ attempts })).toEqual({ outcome: 'delivered', reason: 'delivered', reply: '250 ok', session: 'mx1' });
    expect(decide({ attempts })).toEqual(decideOutcomes({ plan: deliver, recipients: [A], attempts }).get(A));
  });

  it('every MX non-compliant (TLS 1.0 only, no STARTTLS): deferred where a message would divert', () => {
    const attempts = [noSession('mx1', 'non-compliant', 'starttls-not-offered'), noSession('mx2', 'non-compliant', 'starttls-not-offered')];
    expect(decideOutcomes({ plan: deliver, recipients: [A], attempts }).get(A)).toMatchObject({ outcome: 'diverted' });
    expect(decide({ attempts })).toMatchObject({ outcome: 'deferred', reason: 'starttls-not-offered' });
  });

  it('at expiry: bounced queue-time-expired, whatever delivery.onExpiry says, never diverted', () => {
    const attempts = [noSession('mx1', 'non-compliant', 'tls-handshake-failed')];
    expect(decide({ attempts, expired: true })).toMatchObject({ outcome: 'bounced', reason: 'queue-time-expired', status: '4.4.7', reply: 'last problem: tls-handshake-failed' });
    expect(decide({ attempts: [], expired: true })).toMatchObject({ outcome: 'bounced', reason: 'queue-time-expired' });
  });

  it('a divert plan (portal level, MTA-STS naming no usable MX) defers; a null MX bounces; a shutdown defers', () => {
    expect(decideCompliantOnlyOutcomes({ plan: { kind: 'divert', code: 'portal-level', reason: 'always divert' }, recipients: [A], attempts: [] }).get(A)).toMatchObject({
      outcome: 'deferred',
      reason: 'portal-level',
    });
    const nullMx = { kind: 'bounce' as const, code: 'null-mx', reason: 'null MX', status: '5.1.10', reply: '556 5.1.10 null MX' };
    expect(decideCompliantOnlyOutcomes({ plan: nullMx, recipients: [A], attempts: [] }).get(A)).toMatchObject({ outcome: 'bounced', reason: 'null-mx' });
    expect(decide({ attempts: [], aborted: true, expired: true })).toMatchObject({ outcome: 'deferred', reason: 'shutdown' });
  });

  it('a 5xx to RCPT over compliant TLS bounces', () => {
    expect(decide({ attempts: [answered('mx1', 'bounced', '550 5.1.1 unknown')] })).toMatchObject({ outcome: 'bounced', reason: 'rcpt-550', status: '5.1.1' });
  });
});
