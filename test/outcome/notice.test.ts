import { decideNoticeOutcomes, deliveryMode, type CandidateAttempt, type NoticeOutcomeInput, type TriedAddress } from '../../src/outcome';

/** The notice rule: a portal notice never diverts, it delivers opportunistically (pure, no sockets). */

const tried = (mx: string, code: string, reply: string | null = null): TriedAddress => ({ mx, ip: '192.0.2.1', code, reason: `${code} at ${mx}`, reply });
const noSession = (mx: string, classification: 'non-compliant' | 'transient', code: string): CandidateAttempt<string> => ({ kind: 'no-session', classification, code, tried: [tried(mx, code)] });
const answered = (mx: string, replies: Record<string, [outcome: 'delivered' | 'bounced' | 'deferred', reply: string]>): CandidateAttempt<string> => ({
  kind: 'transaction',
  session: mx,
  result: { kind: 'answered', recipients: new Map(Object.entries(replies).map(([a, [outcome, reply]]) => [a, { outcome, reply }])) },
  tried: [tried(mx, 'ok')],
});

const A = 'a@example.test';
const deliver: NoticeOutcomeInput<string>['plan'] = { kind: 'deliver', hosts: [{ excluded: null }, { excluded: null }] };
const decide = (input: Partial<NoticeOutcomeInput<string>>) => decideNoticeOutcomes({ plan: deliver, recipients: [A], attempts: [], ...input }).get(A)!;

describe('deliveryMode', () => {
  it('only a message marked as a portal notice is delivered opportunistically', () => {
    expect(deliveryMode({ notice: { kind: 'portal-link', itemId: 'x' } })).toBe('opportunistic');
    expect(deliveryMode({})).toBe('compliant');
    expect(deliveryMode({ notice: undefined })).toBe('compliant');
  });
});

describe('decideNoticeOutcomes', () => {
  it('delivered: reason notice-delivered, on the session that carried it', () => {
    expect(decide({ attempts: [answered('mx1', { [A]: ['delivered', '250 ok'] })] })).toEqual({ outcome: 'delivered', reason: 'notice-delivered', reply: '250 ok', session: 'mx1' });
  });

  it('a failed MX moves on to the next one', () => {
    expect(decide({ attempts: [noSession('mx1', 'non-compliant', 'tls-handshake-failed'), answered('mx2', { [A]: ['delivered', '250 ok'] })] })).toMatchObject({
      outcome: 'delivered',
      session: 'mx2',
    });
  });

  it('every MX failed (even a broken handshake): deferred, never diverted', () => {
    const d = decide({ attempts: [noSession('mx1', 'non-compliant', 'tls-handshake-failed'), noSession('mx2', 'non-compliant', 'tls-handshake-failed')] });
    expect(d).toMatchObject({ outcome: 'deferred', reason: 'tls-handshake-failed' });
  });

  it('a divert plan (a portal-level domain, MTA-STS without a match) does not divert a notice: it defers', () => {
    expect(decideNoticeOutcomes({ plan: { kind: 'divert', code: 'portal-level', reason: 'always divert' }, recipients: [A], attempts: [] }).get(A)).toMatchObject({
      outcome: 'deferred',
      reason: 'portal-level',
    });
  });

  it('a null MX bounces', () => {
    const d = decideNoticeOutcomes({ plan: { kind: 'bounce', code: 'null-mx', reason: 'null MX', status: '5.1.10', reply: '556 5.1.10 null MX' }, recipients: [A], attempts: [] }).get(A);
    expect(d).toMatchObject({ outcome: 'bounced', reason: 'null-mx', status: '5.1.10' });
  });

  it('still undeliverable at expiry: bounced queue-time-expired (not diverted, whatever onExpiry says)', () => {
    expect(decide({ attempts: [noSession('mx1', 'transient', 'connect-failed')], expired: true })).toMatchObject({
      outcome: 'bounced',
      reason: 'queue-time-expired',
      status: '4.4.7',
      reply: 'last problem: connect-failed',
    });
    expect(decide({ attempts: [noSession('mx1', 'non-compliant', 'tls-handshake-failed')], expired: true })).toMatchObject({ outcome: 'bounced', reason: 'queue-time-expired' });
  });

  it('no attempt at all (every candidate skipped) defers, and bounces at expiry', () => {
    expect(decide({ attempts: [] })).toMatchObject({ outcome: 'deferred' });
    expect(decide({ attempts: [], expired: true })).toMatchObject({ outcome: 'bounced', reason: 'queue-time-expired' });
  });

  it('a 5xx to RCPT bounces; a shutdown defers', () => {
    expect(decide({ attempts: [answered('mx1', { [A]: ['bounced', '550 5.1.1 unknown'] })] })).toMatchObject({ outcome: 'bounced', reason: 'rcpt-550', status: '5.1.1' });
    expect(decide({ attempts: [], aborted: true, expired: true })).toMatchObject({ outcome: 'deferred', reason: 'shutdown' });
  });
});
