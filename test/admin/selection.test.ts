import { describeSelection, isEmptySelection, parseSinceValue, planAction, selectionFilter, selectionScope, selectionView } from '../../src/admin/selection';
import { evidenceOnly, jobInScope, matchesFallbackFilter, matchesFilter } from '../../src/store/records';
import type { FallbackItem, JobRecord, JobState, MessageRecord, RecipientRecord } from '../../src/store/types';

/** The decisions behind bulk actions: what a selection means, which messages an action applies to, what delete keeps. */

const T0 = Date.UTC(2026, 0, 31, 12);

function rcpt(address: string, state: RecipientRecord['state'] = 'pending'): RecipientRecord {
  return { address, state, history: state === 'pending' ? [] : [{ at: T0, outcome: state, reason: state }] };
}

function job(domain: string, state: JobState, recipients: RecipientRecord[], lease?: string): JobRecord {
  return {
    id: `M1/${domain}`,
    messageId: 'M1',
    domain,
    state,
    recipients,
    dueAt: T0,
    attempts: 1,
    createdAt: T0,
    updatedAt: T0,
    ...(lease ? { lease: { owner: lease, expiresAt: T0 + 60_000 } } : {}),
  };
}

function message(jobs: JobRecord[], extra: Partial<MessageRecord> = {}): MessageRecord {
  return { id: 'M1', from: 'Clinic@Sender.test', size: 10, receivedAt: T0, params: {}, client: { ip: '127.0.0.1', listener: 'smtp' }, headers: {}, jobs, ...extra };
}

describe('selection', () => {
  test('an empty selection is refused; --all must be said', () => {
    expect(isEmptySelection({})).toBe(true);
    expect(isEmptySelection({ all: true })).toBe(false);
    expect(isEmptySelection({ olderThan: 0 })).toBe(false);
    expect(isEmptySelection({ domain: 'partner.example' })).toBe(false);
  });

  test('criteria become one store filter (AND), domains lower-cased; all adds no criterion', () => {
    expect(selectionFilter({ domain: 'Partner.Example', state: 'deferred', sender: 'a@b', recipient: 'dr.x@partner.example', olderThan: 7_200_000 })).toEqual({
      domain: 'partner.example',
      state: 'deferred',
      sender: 'a@b',
      recipient: 'dr.x@partner.example',
      olderThan: 7_200_000,
    });
    expect(selectionFilter({ all: true })).toEqual({});
    expect(selectionScope({ domain: 'Partner.Example' })).toEqual({ domain: 'partner.example' });
    expect(selectionScope({ state: 'held' })).toEqual({});
    expect(selectionView({ all: true })).toEqual({ all: true });
  });

  test('descriptions for prompts', () => {
    expect(describeSelection({ domain: 'partner.example' })).toBe('of partner.example');
    expect(describeSelection({ state: 'deferred', olderThan: 7_200_000 })).toBe('in state deferred, older than 2h');
    expect(describeSelection({ olderThan: 3 * 86_400_000 })).toBe('older than 3d');
    expect(describeSelection({ all: true })).toBe('(all)');
  });

  test('since: an ISO time or an age', () => {
    expect(parseSinceValue('2h', T0)).toBe(T0 - 7_200_000);
    expect(parseSinceValue('2026-01-31T12:00:00Z', T0)).toBe(T0);
    expect(parseSinceValue('yesterday', T0)).toBeUndefined();
  });
});

describe('planAction', () => {
  const partnerDeferred = job('partner.example', 'deferred', [rcpt('x@partner.example')]);
  const otherHeld = job('other.example', 'held', [rcpt('y@other.example')]);

  test('hold applies to waiting jobs (also one under way), not to final or held ones', () => {
    expect(planAction('hold', message([partnerDeferred]), {})).toEqual({ apply: true });
    expect(planAction('hold', message([job('p.example', 'leased', [rcpt('a@p.example')], 'w1')]), {})).toEqual({ apply: true });
    expect(planAction('hold', message([job('p.example', 'delivered', [rcpt('a@p.example', 'delivered')])]), {})).toEqual({ apply: false, reason: 'nothing waiting to hold (delivered)' });
  });

  test('with a domain only that domain’s jobs count', () => {
    const mixed = message([partnerDeferred, otherHeld]);
    expect(planAction('release', mixed, { domain: 'other.example' })).toEqual({ apply: true });
    expect(planAction('release', mixed, { domain: 'partner.example' })).toEqual({ apply: false, reason: 'nothing held to release (deferred)' });
    expect(jobInScope(partnerDeferred, { domain: 'Partner.Example' })).toBe(true);
    expect(jobInScope(otherHeld, { domain: 'partner.example' })).toBe(false);
    expect(jobInScope(otherHeld, undefined)).toBe(true);
  });

  test('retry and delete skip a message a worker is delivering, naming the worker', () => {
    const leased = message([job('p.example', 'leased', [rcpt('a@p.example')], 'relay-1:w2')]);
    expect(planAction('retry', leased, {})).toEqual({ apply: false, reason: 'being delivered right now (leased by relay-1:w2)' });
    expect(planAction('delete', leased, {})).toEqual({ apply: false, reason: 'being delivered right now (leased by relay-1:w2); try again in a moment' });
    expect(planAction('retry', message([partnerDeferred]), {})).toEqual({ apply: true });
    expect(planAction('retry', message([otherHeld]), {})).toEqual({ apply: true });
    expect(planAction('retry', message([job('p.example', 'bounced', [rcpt('a@p.example', 'bounced')])]), {})).toEqual({ apply: false, reason: 'nothing left to retry (bounced)' });
    expect(planAction('delete', message([job('p.example', 'bounced', [rcpt('a@p.example', 'bounced')])]), {})).toEqual({ apply: true });
  });

  test('a deleted message (evidence only) is never acted on again', () => {
    const deleted = message([job('p.example', 'delivered', [rcpt('a@p.example', 'delivered')])], { deletedAt: T0 });
    for (const action of ['hold', 'release', 'retry', 'delete'] as const) expect(planAction(action, deleted, { all: true })).toMatchObject({ apply: false });
  });
});

describe('matching and evidence', () => {
  test('recipient matching is exact and case-insensitive; deleted records only on request', () => {
    const m = message([job('partner.example', 'deferred', [rcpt('Dr.X@partner.example')])]);
    expect(matchesFilter(m, { recipient: 'dr.x@partner.example' }, T0)).toBe(true);
    expect(matchesFilter(m, { recipient: 'x@partner.example' }, T0)).toBe(false);
    const gone = { ...m, deletedAt: T0 };
    expect(matchesFilter(gone, {}, T0)).toBe(false);
    expect(matchesFilter(gone, { includeDeleted: true }, T0)).toBe(true);
  });

  test('fallback filter: domain of the recipient, recipient, since, state', () => {
    const item: FallbackItem = { id: 'I', queueId: 'M1', jobId: 'M1/partner.example', from: '', recipient: 'dr.x@partner.example', reason: 'r', evidence: [], divertedAt: T0, state: 'ready' };
    expect(matchesFallbackFilter(item, { domain: 'Partner.Example' })).toBe(true);
    expect(matchesFallbackFilter(item, { domain: 'example' })).toBe(false);
    expect(matchesFallbackFilter(item, { recipient: 'DR.X@partner.example', since: T0 })).toBe(true);
    expect(matchesFallbackFilter(item, { since: T0 + 1 })).toBe(false);
    expect(matchesFallbackFilter(item, { state: 'acked' })).toBe(false);
  });

  test('delete keeps final recipients with their evidence; pending ones and the body go', () => {
    const m = message([
      job('done.example', 'delivered', [rcpt('a@done.example', 'delivered')]),
      job('mixed.example', 'deferred', [rcpt('b@mixed.example', 'bounced'), rcpt('c@mixed.example')], 'w1'),
      job('wait.example', 'queued', [rcpt('d@wait.example')]),
    ]);
    const kept = evidenceOnly(m, T0 + 5)!;
    expect(kept.deletedAt).toBe(T0 + 5);
    expect(kept.bodyRemoved).toBe(true);
    expect(kept.jobs.map((j) => [j.domain, j.state, j.recipients.map((r) => r.address)])).toEqual([
      ['done.example', 'delivered', ['a@done.example']],
      ['mixed.example', 'bounced', ['b@mixed.example']],
    ]);
    expect(kept.jobs[1]!.lease).toBeUndefined();
    expect(kept.jobs[1]!.recipients[0]!.history).toEqual([{ at: T0, outcome: 'bounced', reason: 'bounced' }]);
    expect(evidenceOnly(message([job('wait.example', 'queued', [rcpt('d@wait.example')])]), T0)).toBeUndefined();
  });
});
