import { finishedNotices } from '../../src/outbound/notice-observer';
import type { ClaimedJob, JobResult } from '../../src/store/types';

function claimed(notice?: { itemId?: string; kind: string }): ClaimedJob {
  return { message: { id: 'Q1', params: notice ? { notice } : {} }, job: { id: 'Q1/weak.test' } } as unknown as ClaimedJob;
}

describe('finishedNotices', () => {
  const result: JobResult = {
    recipients: [
      { address: 'a@weak.test', outcome: 'delivered', evidence: { at: 1, outcome: 'delivered', reason: 'notice-delivered', tls: { protocol: 'plaintext', cipher: null } } },
      { address: 'b@weak.test', outcome: 'bounced', evidence: { at: 1, outcome: 'bounced', reason: 'rcpt-550', status: '5.1.1', reply: '550 5.1.1 no such user' } },
      { address: 'c@weak.test', outcome: 'deferred', evidence: { at: 1, outcome: 'deferred', reason: 'connect-failed' } },
    ],
  };

  it('reports each final notice recipient, with the status and reply of a bounce', () => {
    expect(finishedNotices(claimed({ itemId: 'I1', kind: 'portal-link' }), result)).toEqual([
      { queueId: 'Q1', itemId: 'I1', kind: 'portal-link', recipient: 'a@weak.test', outcome: 'delivered', reason: 'notice-delivered', tls: 'plaintext' },
      { queueId: 'Q1', itemId: 'I1', kind: 'portal-link', recipient: 'b@weak.test', outcome: 'bounced', reason: 'rcpt-550', tls: null, status: '5.1.1', diagnostic: '550 5.1.1 no such user' },
    ]);
  });

  it('says nothing about messages that are not notices', () => {
    expect(finishedNotices(claimed(), result)).toEqual([]);
  });
});
