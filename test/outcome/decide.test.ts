import { decideOutcomes, endsAttempts, type CandidateAttempt, type OutcomeInput, type TransactionResult, type TriedAddress } from '../../src/outcome';

/** The outcome rule, row by row of docs/delivery.md (classes table and outcomes list); no sockets. */

const deliverPlan = (excluded: Array<string | null> = [null]): OutcomeInput<string>['plan'] => ({ kind: 'deliver', hosts: excluded.map((e) => ({ excluded: e })) });
const tried = (mx: string, code: string, reply: string | null = null): TriedAddress => ({ mx, ip: `192.0.2.${mx.length}`, code, reason: `${code} at ${mx}`, reply });

const noSession = (mx: string, classification: 'non-compliant' | 'transient', code: string, reply: string | null = null): CandidateAttempt<string> => ({
  kind: 'no-session',
  classification,
  code,
  tried: [tried(mx, code, reply)],
});
const answered = (mx: string, replies: Record<string, [outcome: 'delivered' | 'bounced' | 'deferred', reply: string]>): CandidateAttempt<string> => ({
  kind: 'transaction',
  session: mx,
  result: { kind: 'answered', recipients: new Map(Object.entries(replies).map(([a, [outcome, reply]]) => [a, { outcome, reply }])) },
  tried: [tried(mx, 'ok')],
});
const failed = (mx: string, classification: 'non-compliant' | 'transient' | 'permanent', code: string, reply: string | null, bodySent = false): CandidateAttempt<string> => {
  const result: TransactionResult = { kind: 'failed', classification, code, reply, reason: `${code} at ${mx}`, bodySent };
  return { kind: 'transaction', session: mx, result, tried: [tried(mx, code, reply)] };
};

const A = 'a@example.test';
const B = 'b@example.test';
const decide = (input: Partial<OutcomeInput<string>> & Pick<OutcomeInput<string>, 'attempts'>) => decideOutcomes({ plan: deliverPlan(), recipients: [A, B], ...input });

describe('outcome rule: how each MX attempt is classified', () => {
  it('non-compliant (no session): next candidate', () => {
    const d = decide({ attempts: [noSession('mx1', 'non-compliant', 'starttls-not-offered'), answered('mx2', { [A]: ['delivered', '250 ok'], [B]: ['delivered', '250 ok'] })] });
    expect(d.get(A)).toEqual({ outcome: 'delivered', reason: 'delivered', reply: '250 ok', session: 'mx2' });
  });

  it('non-compliant in the transaction (REQUIRETLS not offered): next candidate', () => {
    const d = decide({
      requireTls: true,
      attempts: [failed('mx1', 'non-compliant', 'requiretls-not-supported', null), answered('mx2', { [A]: ['delivered', '250 ok'], [B]: ['delivered', '250 ok'] })],
    });
    expect(d.get(B)).toMatchObject({ outcome: 'delivered', session: 'mx2' });
  });

  it('transient (connect failed): next candidate, and a later delivery wins', () => {
    const d = decide({ attempts: [noSession('mx1', 'transient', 'connect-failed'), answered('mx2', { [A]: ['delivered', '250 ok'], [B]: ['delivered', '250 ok'] })] });
    expect(d.get(A)).toMatchObject({ outcome: 'delivered', reason: 'delivered' });
  });

  it('transient 4xx to MAIL before the body: next candidate', () => {
    const attempts = [failed('mx1', 'transient', 'mail-451', '451 4.3.0 later'), answered('mx2', { [A]: ['delivered', '250 ok'], [B]: ['delivered', '250 ok'] })];
    expect(endsAttempts(attempts[0]!)).toBe(false);
    expect(decide({ attempts }).get(A)).toMatchObject({ outcome: 'delivered', session: 'mx2' });
  });

  it('permanent 5xx to MAIL or DATA: every recipient bounces with the reply’s enhanced status, no other MX', () => {
    const d = decide({ attempts: [failed('mx1', 'permanent', 'data-554', '554 5.6.0 content rejected', true), answered('mx2', { [A]: ['delivered', '250 ok'] })] });
    for (const address of [A, B]) expect(d.get(address)).toEqual({ outcome: 'bounced', reason: 'data-554', reply: '554 5.6.0 content rejected', status: '5.6.0', session: 'mx1' });
  });

  it('permanent without an enhanced status: 5.0.0', () => {
    expect(decide({ attempts: [failed('mx1', 'permanent', 'mail-550', '550 no')] }).get(A)).toMatchObject({ outcome: 'bounced', status: '5.0.0' });
  });

  it('permanent 5xx to RCPT: that recipient only bounces', () => {
    const d = decide({ attempts: [answered('mx1', { [A]: ['bounced', '550 5.1.1 no such user'], [B]: ['delivered', '250 2.0.0 ok'] })] });
    expect(d.get(A)).toEqual({ outcome: 'bounced', reason: 'rcpt-550', reply: '550 5.1.1 no such user', status: '5.1.1', session: 'mx1' });
    expect(d.get(B)).toEqual({ outcome: 'delivered', reason: 'delivered', reply: '250 2.0.0 ok', session: 'mx1' });
  });

  it('null MX (a bounce plan): bounce with the plan’s status and reply', () => {
    const plan = { kind: 'bounce' as const, code: 'null-mx', reason: 'the domain accepts no mail', status: '5.1.10', reply: '556 5.1.10 null MX' };
    expect(decide({ plan, attempts: [] }).get(A)).toEqual({ outcome: 'bounced', reason: 'null-mx', detail: 'the domain accepts no mail', reply: '556 5.1.10 null MX', status: '5.1.10' });
  });
});

describe('outcome rule: outcomes per recipient', () => {
  it('delivered as soon as one compliant MX accepts it; later attempts are not read', () => {
    const d = decide({ attempts: [answered('mx1', { [A]: ['delivered', '250 ok'], [B]: ['delivered', '250 ok'] }), failed('mx2', 'permanent', 'mail-550', '550 no')] });
    expect(d.get(B)).toMatchObject({ outcome: 'delivered', session: 'mx1' });
  });

  it('diverted when every candidate is non-compliant with one shared cause: that cause', () => {
    const d = decide({ attempts: [noSession('mx1', 'non-compliant', 'starttls-not-offered'), noSession('mx2', 'non-compliant', 'starttls-not-offered')] });
    expect(d.get(A)).toEqual({
      outcome: 'diverted',
      reason: 'starttls-not-offered',
      detail: 'mx1 [192.0.2.3]: starttls-not-offered: starttls-not-offered at mx1; mx2 [192.0.2.3]: starttls-not-offered: starttls-not-offered at mx2',
      reply: null,
    });
  });

  it('diverted with no-compliant-mx when the MX hosts failed differently; the last reply is kept', () => {
    const d = decide({ attempts: [noSession('mx1', 'non-compliant', 'tls-handshake-failed'), noSession('mx2', 'non-compliant', 'starttls-refused', '554 5.7.0 no TLS')] });
    expect(d.get(A)).toMatchObject({ outcome: 'diverted', reason: 'no-compliant-mx', reply: '554 5.7.0 no TLS' });
  });

  it('diverted with no-mx-candidate when nothing was tried', () => {
    expect(decide({ attempts: [] }).get(A)).toEqual({ outcome: 'diverted', reason: 'no-mx-candidate', detail: 'no MX host was a candidate', reply: null });
  });

  it('diverted at once by the plan (level portal, MTA-STS enforce without a matching MX)', () => {
    const plan = { kind: 'divert' as const, code: 'mta-sts-no-matching-mx', reason: 'no MX in the policy' };
    expect(decide({ plan, attempts: [] }).get(B)).toEqual({ outcome: 'diverted', reason: 'mta-sts-no-matching-mx', detail: 'no MX in the policy', reply: null });
  });

  it('deferred when some candidate failed transiently, with its code, even if the others were non-compliant', () => {
    const d = decide({ attempts: [noSession('mx1', 'transient', 'connect-failed'), noSession('mx2', 'non-compliant', 'starttls-not-offered')] });
    expect(d.get(A)).toEqual({ outcome: 'deferred', reason: 'connect-failed', reply: null });
  });

  it('deferred with the last transient code and the last reply', () => {
    const d = decide({ attempts: [noSession('mx1', 'transient', 'smtp-refused', '421 busy'), failed('mx2', 'transient', 'mail-451', '451 4.3.0 later')] });
    expect(d.get(A)).toEqual({ outcome: 'deferred', reason: 'mail-451', reply: '451 4.3.0 later' });
  });

  it('deferred when an MX host’s address lookup failed temporarily and the rest were non-compliant', () => {
    const d = decide({ plan: deliverPlan([null, 'address-lookup-temporary']), attempts: [noSession('mx1', 'non-compliant', 'starttls-not-offered')] });
    expect(d.get(A)).toMatchObject({ outcome: 'deferred', reason: 'mx-address-lookup-temporary' });
  });

  it('deferred by the plan (DNS temporary failure)', () => {
    const plan = { kind: 'defer' as const, code: 'dns-temporary', reason: 'SERVFAIL' };
    expect(decide({ plan, attempts: [] }).get(A)).toEqual({ outcome: 'deferred', reason: 'dns-temporary', detail: 'SERVFAIL', reply: null });
  });

  it('RCPT 4xx defers that recipient; a recipient without a reply is deferred too', () => {
    const d = decide({ attempts: [answered('mx1', { [A]: ['deferred', '450 4.2.1 mailbox busy'] })] });
    expect(d.get(A)).toEqual({ outcome: 'deferred', reason: 'rcpt-450', reply: '450 4.2.1 mailbox busy', session: 'mx1' });
    expect(d.get(B)).toEqual({ outcome: 'deferred', reason: 'rcpt-no-reply', reply: null, session: 'mx1' });
  });

  it('body sent, then the connection lost: deferred, and no other MX is tried', () => {
    const lost = failed('mx1', 'transient', 'connection-lost', null, true);
    expect(endsAttempts(lost)).toBe(true);
    const d = decide({ attempts: [lost, answered('mx2', { [A]: ['delivered', '250 ok'], [B]: ['delivered', '250 ok'] })] });
    expect(d.get(A)).toEqual({ outcome: 'deferred', reason: 'connection-lost', reply: null, session: 'mx1' });
  });

  it('REQUIRETLS unmet by every MX: bounced requiretls-unavailable 5.7.30', () => {
    const d = decide({ requireTls: true, attempts: [noSession('mx1', 'non-compliant', 'certificate-untrusted'), failed('mx2', 'non-compliant', 'requiretls-not-supported', null)] });
    expect(d.get(A)).toEqual({ outcome: 'bounced', reason: 'requiretls-unavailable', reply: '550 5.7.30 REQUIRETLS support required', status: '5.7.30' });
  });

  it('REQUIRETLS with a transient failure: deferred, not bounced', () => {
    expect(decide({ requireTls: true, attempts: [noSession('mx1', 'transient', 'connect-failed')] }).get(A)).toMatchObject({ outcome: 'deferred', reason: 'connect-failed' });
  });

  it('REQUIRETLS when MTA-STS enforce names no MX: bounced 5.7.30 at once instead of diverted', () => {
    const plan = { kind: 'divert' as const, code: 'mta-sts-no-matching-mx', reason: 'no MX in the policy' };
    expect(decide({ plan, requireTls: true, attempts: [] }).get(A)).toEqual({
      outcome: 'bounced',
      reason: 'requiretls-unavailable',
      detail: 'no MX in the policy',
      reply: '550 5.7.30 REQUIRETLS support required',
      status: '5.7.30',
    });
  });

  it('REQUIRETLS to a domain at level portal: still diverted (the admin’s rule), and a deferring plan still defers', () => {
    const portal = { kind: 'divert' as const, code: 'portal-level', reason: 'always divert' };
    expect(decide({ plan: portal, requireTls: true, attempts: [] }).get(A)).toMatchObject({ outcome: 'diverted', reason: 'portal-level' });
    const dns = { kind: 'defer' as const, code: 'mta-sts-dns-temporary', reason: 'SERVFAIL' };
    expect(decide({ plan: dns, requireTls: true, attempts: [] }).get(A)).toMatchObject({ outcome: 'deferred', reason: 'mta-sts-dns-temporary' });
  });

  it('REQUIRETLS with every MX skipped as unauthenticated: bounced 5.7.30; a skip that may change (policy not fetched) defers', () => {
    const skipped = noSession('mx1', 'non-compliant', 'requiretls-unauthenticated-mx');
    expect(decide({ requireTls: true, attempts: [skipped] }).get(A)).toMatchObject({ outcome: 'bounced', status: '5.7.30' });
    const waiting = noSession('mx1', 'transient', 'requiretls-mta-sts-unavailable');
    expect(decide({ requireTls: true, attempts: [waiting] }).get(A)).toMatchObject({ outcome: 'deferred', reason: 'requiretls-mta-sts-unavailable' });
  });

  it('shutdown before every recipient was decided: deferred shutdown, whatever else failed', () => {
    const d = decide({ aborted: true, attempts: [noSession('mx1', 'transient', 'connect-failed')] });
    expect(d.get(A)).toEqual({ outcome: 'deferred', reason: 'shutdown', reply: null });
  });

  it('a compliant probe (sealgate check) counts as delivered: compliant-mx', () => {
    const d = decide({ attempts: [noSession('mx1', 'transient', 'connect-failed'), { kind: 'probed', session: 'mx2', tried: [] }] });
    expect(d.get(A)).toEqual({ outcome: 'delivered', reason: 'compliant-mx', reply: null, session: 'mx2' });
  });
});

describe('outcome rule: expiry after delivery.maxQueueTime', () => {
  const transient = [noSession('mx1', 'transient', 'connect-failed', '421 busy')];

  it('a REQUIRETLS message still deferred at expiry bounces 4.4.7 even when onExpiry is divert', () => {
    expect(decide({ expired: 'divert', requireTls: true, attempts: transient }).get(A)).toMatchObject({ outcome: 'bounced', reason: 'queue-time-expired', status: '4.4.7', reply: '421 busy' });
  });

  it('onExpiry divert: a deferred recipient is diverted queue-time-expired, its reply kept', () => {
    expect(decide({ expired: 'divert', attempts: transient }).get(A)).toEqual({ outcome: 'diverted', reason: 'queue-time-expired', reply: '421 busy' });
  });

  it('onExpiry bounce: 4.4.7, with the last problem as the reply when there was none', () => {
    const plan = { kind: 'defer' as const, code: 'dns-temporary', reason: 'SERVFAIL' };
    expect(decide({ plan, expired: 'bounce', attempts: [] }).get(A)).toEqual({
      outcome: 'bounced',
      reason: 'queue-time-expired',
      status: '4.4.7',
      detail: 'SERVFAIL',
      reply: 'last problem: dns-temporary',
    });
  });

  it('expiry leaves final outcomes alone and never applies to a shutdown', () => {
    const d = decide({ expired: 'bounce', attempts: [answered('mx1', { [A]: ['delivered', '250 ok'], [B]: ['deferred', '451 later'] })] });
    expect(d.get(A)).toMatchObject({ outcome: 'delivered', reason: 'delivered' });
    expect(d.get(B)).toMatchObject({ outcome: 'bounced', reason: 'queue-time-expired', reply: '451 later' });
    expect(decide({ expired: 'divert', aborted: true, attempts: transient }).get(A)).toMatchObject({ outcome: 'deferred', reason: 'shutdown' });
  });
});
