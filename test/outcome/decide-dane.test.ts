import { decideOutcomes, type CandidateAttempt } from '../../src/outcome';

describe('a host left out because its TLSA lookup was bogus (DANE)', () => {
  const nonCompliant: CandidateAttempt<string> = {
    kind: 'no-session',
    classification: 'non-compliant',
    code: 'dane-no-match',
    tried: [{ mx: 'mx2.test', ip: '127.0.0.2', code: 'dane-no-match', reason: 'no match', reply: null }],
  };

  it('defers instead of diverting when every tried MX was non-compliant (the bogus host might have been the good one)', () => {
    const decision = decideOutcomes({ plan: { kind: 'deliver', hosts: [{ excluded: 'dane-tlsa-bogus' }, { excluded: null }] }, recipients: ['a@test'], attempts: [nonCompliant] }).get('a@test');
    expect(decision).toMatchObject({ outcome: 'deferred', reason: 'dane-tlsa-bogus' });
  });

  it('still diverts when no host was left out', () => {
    const decision = decideOutcomes({ plan: { kind: 'deliver', hosts: [{ excluded: null }] }, recipients: ['a@test'], attempts: [nonCompliant] }).get('a@test');
    expect(decision).toMatchObject({ outcome: 'diverted', reason: 'dane-no-match' });
  });

  it('a plan deferred for dane-tlsa-bogus defers every recipient', () => {
    const decision = decideOutcomes({ plan: { kind: 'defer', code: 'dane-tlsa-bogus', reason: 'bogus' }, recipients: ['a@test'], attempts: [] }).get('a@test');
    expect(decision).toMatchObject({ outcome: 'deferred', reason: 'dane-tlsa-bogus' });
  });
});
