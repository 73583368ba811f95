import type { FallbackItem, MessageRecord, RecipientState } from '../../src/store/types';
import type { Submission } from '../support/crash-load';
import { reconcile, summaryLine, type ReconcileInput } from '../support/crash-reconcile';
import type { ReceivedMessage } from '../support/world';

/** The crash loop's verdicts on hand-made facts: each check can fail, and says why. */

const T0 = 1_800_000_000_000;

function submission(seq: number, recipients: string[], result: Submission['result'] = 'acked'): Submission {
  return {
    seq,
    messageId: `crash-unit-${seq}@sender.test`,
    recipients,
    result,
    detail: '',
    startedAt: T0,
    endedAt: T0 + 10,
    longestReplyMs: 5,
    ...(result === 'acked' ? { queueId: `Q${seq}` } : {}),
  };
}

function record(seq: number, states: Record<string, RecipientState>): MessageRecord {
  const byDomain = new Map<string, Array<[string, RecipientState]>>();
  for (const [address, state] of Object.entries(states)) {
    const domain = address.split('@')[1]!;
    byDomain.set(domain, [...(byDomain.get(domain) ?? []), [address, state]]);
  }
  return {
    id: `Q${seq}`,
    from: 'clinic@sender.test',
    size: 100,
    receivedAt: T0,
    params: {},
    client: { ip: '127.0.0.1', listener: 'smarthost' },
    headers: { messageId: `<crash-unit-${seq}@sender.test>` },
    jobs: [...byDomain].map(([domain, recipients]) => ({
      id: `Q${seq}/${domain}`,
      messageId: `Q${seq}`,
      domain,
      state: recipients[0]![1] === 'pending' ? 'queued' : (recipients[0]![1] as 'delivered'),
      recipients: recipients.map(([address, state]) => ({ address, state, history: [] })),
      dueAt: T0,
      attempts: 1,
      createdAt: T0,
      updatedAt: T0,
    })),
  };
}

function arrived(seq: number, rcpt: string, at: number, mx = 'mx1.tls13.test', dataStartedAt = at - 5): ReceivedMessage {
  return {
    mx,
    mailFrom: 'clinic@sender.test',
    rcptTo: [rcpt],
    raw: Buffer.from(`Message-ID: <crash-unit-${seq}@sender.test>\r\nSubject: x\r\n\r\nbody\r\n`),
    tls: null,
    remoteAddress: '127.0.0.1',
    at: new Date(at),
    dataStartedAt: new Date(dataStartedAt),
  };
}

function dsn(seq: number, rcpt: string, at: number): ReceivedMessage {
  const raw = `Message-ID: <dsn.Q${seq}.${at}@relay.test>\r\n\r\nFinal-Recipient: rfc822; ${rcpt}\r\n\r\nMessage-ID: <crash-unit-${seq}@sender.test>\r\n`;
  return { mx: 'mx1.sender.test', mailFrom: '', rcptTo: ['clinic@sender.test'], raw: Buffer.from(raw), tls: null, remoteAddress: '127.0.0.1', at: new Date(at), dataStartedAt: new Date(at - 5) };
}

function fallback(seq: number, recipient: string): FallbackItem {
  return { id: `Q${seq}.x`, queueId: `Q${seq}`, jobId: `Q${seq}/nostarttls.test`, from: 'clinic@sender.test', recipient, reason: 'starttls-not-offered', evidence: [], divertedAt: T0, state: 'ready' };
}

const base = (overrides: Partial<ReconcileInput>): ReconcileInput => ({
  submissions: [],
  messages: [],
  fallback: [],
  received: [],
  logs: [],
  dsnMailbox: 'mx1.sender.test',
  kills: [],
  ...overrides,
});

test('each acknowledged recipient is counted in the one state it ended in', () => {
  const r = reconcile(
    base({
      submissions: [submission(1, ['a@tls13.test', 'b@nostarttls.test', 'c@rcpt550.test', 'd@rcpt450.test'])],
      messages: [record(1, { 'a@tls13.test': 'delivered', 'b@nostarttls.test': 'diverted', 'c@rcpt550.test': 'bounced', 'd@rcpt450.test': 'pending' })],
      fallback: [fallback(1, 'b@nostarttls.test')],
      received: [arrived(1, 'a@tls13.test', T0 + 100), dsn(1, 'c@rcpt550.test', T0 + 200)],
    }),
  );
  expect(r).toMatchObject({ acknowledged: 4, delivered: 1, diverted: 1, bounced: 1, queued: 1, lost: 0, conflicts: [], duplicates: [] });
});

test('recorded but never carried out, or missing from the store, is lost', () => {
  const r = reconcile(
    base({
      submissions: [submission(1, ['a@tls13.test', 'b@nostarttls.test', 'c@rcpt550.test']), submission(2, ['e@tls13.test'])],
      messages: [record(1, { 'a@tls13.test': 'delivered', 'b@nostarttls.test': 'diverted', 'c@rcpt550.test': 'bounced' })],
    }),
  );
  expect(r.lost).toBe(4);
  expect(r.lostDetails.join('\n')).toMatch(/recorded delivered but never arrived: a@tls13.test/);
  expect(r.lostDetails.join('\n')).toMatch(/recorded diverted without a fallback item: b@nostarttls.test/);
  expect(r.lostDetails.join('\n')).toMatch(/recorded bounced without a DSN at the sender: c@rcpt550.test/);
  expect(r.lostDetails.join('\n')).toMatch(/acknowledged but not in the store: e@tls13.test/);
});

test('a recipient both delivered and bounced, or still queued but delivered, is a conflict', () => {
  const r = reconcile(
    base({
      submissions: [submission(1, ['a@rcpt550.test', 'b@tls13.test'])],
      messages: [record(1, { 'a@rcpt550.test': 'bounced', 'b@tls13.test': 'pending' })],
      received: [arrived(1, 'a@rcpt550.test', T0 + 1), dsn(1, 'a@rcpt550.test', T0 + 2), arrived(1, 'b@tls13.test', T0 + 3)],
    }),
  );
  expect(r.conflicts).toHaveLength(2);
  expect(r.conflicts[0]).toMatch(/in delivered and bounced: a@rcpt550.test/);
  expect(r.conflicts[1]).toMatch(/still queued but already ended: b@tls13.test/);
});

test('a duplicate needs a possible-duplicate line for its message and a kill between its copies', () => {
  const input = base({
    submissions: [submission(1, ['a@tls13.test']), submission(2, ['b@tls13.test']), submission(3, ['c@tls13.test'])],
    messages: [record(1, { 'a@tls13.test': 'delivered' }), record(2, { 'b@tls13.test': 'delivered' }), record(3, { 'c@tls13.test': 'delivered' })],
    received: [
      arrived(1, 'a@tls13.test', T0 + 100),
      arrived(1, 'a@tls13.test', T0 + 900),
      arrived(2, 'b@tls13.test', T0 + 100),
      arrived(2, 'b@tls13.test', T0 + 900),
      arrived(3, 'c@tls13.test', T0 + 1_000),
      arrived(3, 'c@tls13.test', T0 + 1_100),
    ],
    logs: [
      { event: 'possible-duplicate', jobId: 'Q1/tls13.test', msg: 'taking over a job whose lease expired mid-attempt' },
      { event: 'possible-duplicate', jobId: 'Q3/tls13.test', msg: 'taking over a job whose lease expired mid-attempt' },
    ],
    kills: [T0 + 500],
  });
  const r = reconcile(input);
  expect(r.duplicates.map((d) => [d.messageId, d.copies, d.withoutCrash, d.causes.length])).toEqual([
    ['crash-unit-1@sender.test', 2, false, 1],
    ['crash-unit-2@sender.test', 2, false, 0],
    ['crash-unit-3@sender.test', 2, true, 1],
  ]);
  expect(r.unexplainedDuplicates.map((d) => d.messageId)).toEqual(['crash-unit-2@sender.test']);
  expect(r.duplicatesWithoutCrash.map((d) => d.messageId)).toEqual(['crash-unit-3@sender.test']);
  expect(r.lost).toBe(0);
  expect(summaryLine('unit', 1, r)).toMatch(/kills=1 acknowledged=3 delivered=3 .*duplicates=3 .*unexplained=1 withoutCrash=1/);
});

test('a copy whose DATA began before a kill but arrived after it may be the dead relay’s: the kill explains the next copy', () => {
  const input = base({
    submissions: [submission(1, ['a@tls13.test']), submission(2, ['b@tls13.test'])],
    messages: [record(1, { 'a@tls13.test': 'delivered' }), record(2, { 'b@tls13.test': 'delivered' })],
    received: [
      // The MX took in the last bytes of the killed relay 40 ms after the kill; the next relay sent it again.
      arrived(1, 'a@tls13.test', T0 + 540, 'mx1.tls13.test', T0 + 480),
      arrived(1, 'a@tls13.test', T0 + 9_000),
      // DATA began after the kill: only the next relay can have sent both copies.
      arrived(2, 'b@tls13.test', T0 + 540, 'mx1.tls13.test', T0 + 520),
      arrived(2, 'b@tls13.test', T0 + 9_000),
    ],
    logs: [
      { event: 'possible-duplicate', jobId: 'Q1/tls13.test', msg: 'taking over a job whose lease expired mid-attempt' },
      { event: 'possible-duplicate', jobId: 'Q2/tls13.test', msg: 'taking over a job whose lease expired mid-attempt' },
    ],
    kills: [T0 + 500],
  });
  expect(reconcile(input).duplicatesWithoutCrash.map((d) => d.messageId)).toEqual(['crash-unit-2@sender.test']);
});

test('a second DSN for one bounce is a duplicate; unacknowledged submissions are counted apart', () => {
  const r = reconcile(
    base({
      submissions: [submission(1, ['c@rcpt550.test']), submission(2, ['x@tls13.test'], 'dropped')],
      messages: [record(1, { 'c@rcpt550.test': 'bounced' }), record(2, { 'x@tls13.test': 'delivered' })],
      received: [dsn(1, 'c@rcpt550.test', T0 + 10), dsn(1, 'c@rcpt550.test', T0 + 20), arrived(2, 'x@tls13.test', T0 + 30)],
    }),
  );
  expect(r.bounced).toBe(1);
  expect(r.duplicates).toMatchObject([{ dsn: true, copies: 2, causes: [] }]);
  expect(r.unexplainedDuplicates).toHaveLength(1);
  expect(r.unacked).toEqual({ submissions: 1, recipients: 1, stored: 1, arrived: 1 });
  expect(r.acknowledged).toBe(1);
});

test("a DSN message sent twice is explained by the possible-duplicate line of the DSN's own job", () => {
  const r = reconcile(
    base({
      submissions: [submission(1, ['c@rcpt550.test'])],
      messages: [record(1, { 'c@rcpt550.test': 'bounced' })],
      received: [dsn(1, 'c@rcpt550.test', T0 + 10), dsn(1, 'c@rcpt550.test', T0 + 20)],
      logs: [
        { event: 'dsn-queued', queueId: 'Q1', dsnQueueId: 'D1' },
        { event: 'possible-duplicate', jobId: 'D1/sender.test', msg: 'taking over a job whose lease expired mid-attempt' },
      ],
    }),
  );
  expect(r.duplicates).toMatchObject([{ dsn: true, copies: 2, causes: ['taking over a job whose lease expired mid-attempt (D1/sender.test)'] }]);
  expect(r.unexplainedDuplicates).toEqual([]);
});
