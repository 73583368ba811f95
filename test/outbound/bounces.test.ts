import { Readable } from 'node:stream';
import { silentLogger } from '../../src/log/logger';
import { queueDsn, queueFailureDsn } from '../../src/outbound/bounces';
import type { ClaimedJob, Store } from '../../src/store/types';

/** Who gets a failure DSN: never the portal's own address for a bounced notice. */

function claimed(params: ClaimedJob['message']['params'], from = 'clinic@sender.test'): ClaimedJob {
  return {
    job: {
      id: 'm1/example.test',
      messageId: 'm1',
      domain: 'example.test',
      state: 'queued',
      recipients: [{ address: 'a@example.test', state: 'pending', history: [] }],
      dueAt: 0,
      attempts: 0,
      createdAt: 0,
      updatedAt: 0,
    },
    message: { id: 'm1', from, size: 10, receivedAt: 0, params, client: { ip: '127.0.0.1', listener: 'submission' }, headers: {} },
  };
}

function fakeStore() {
  const enqueued: string[] = [];
  const store = {
    openBody: async () => Readable.from([Buffer.from('Subject: x\r\n\r\nbody\r\n')]),
    enqueue: async (message: { recipients: Array<{ address: string }> }, body: Readable) => {
      body.resume();
      enqueued.push(message.recipients[0]!.address);
      return { id: `dsn${enqueued.length}` };
    },
  } as unknown as Store;
  return { store, enqueued };
}

const failed = [{ address: 'a@example.test', action: 'failed' as const, status: '5.1.1', remoteMta: 'mx1.example.test', diagnostic: '550 5.1.1 unknown', lastAttemptAt: 0, record: {} }];

describe('queueFailureDsn', () => {
  it('queues a DSN to the sender of an ordinary message', async () => {
    const { store, enqueued } = fakeStore();
    expect(await queueFailureDsn(store, 'relay.test', claimed({}), failed, silentLogger())).toBe('dsn1');
    expect(enqueued).toEqual(['clinic@sender.test']);
  });

  it('queues it under the id the caller chose, so a retry of a write that landed finds it; none chosen, none passed', async () => {
    const options: unknown[] = [];
    const store = {
      openBody: async () => Readable.from([Buffer.from('Subject: x\r\n\r\nbody\r\n')]),
      enqueue: async (_message: unknown, body: Readable, _headers: unknown, given?: { id?: string }) => {
        body.resume();
        options.push(given);
        return { id: given?.id ?? 'picked-by-store' };
      },
    } as unknown as Store;
    expect(await queueFailureDsn(store, 'relay.test', claimed({}), failed, silentLogger(), '01JDSN00000000000000AB')).toBe('01JDSN00000000000000AB');
    expect(await queueFailureDsn(store, 'relay.test', claimed({}), failed, silentLogger())).toBe('picked-by-store');
    expect(options).toEqual([{ id: '01JDSN00000000000000AB' }, undefined]);
  });

  it('queues none for a portal notice', async () => {
    const { store, enqueued } = fakeStore();
    expect(await queueFailureDsn(store, 'relay.test', claimed({ notice: { itemId: 'i1', kind: 'portal-link' } }, 'portal@relay.test'), failed, silentLogger())).toBeUndefined();
    expect(enqueued).toEqual([]);
  });
});

describe('queueDsn: one kind of report, NOTIFY per recipient', () => {
  const delayed = (address: string, notify?: string[]) => ({
    address,
    action: 'delayed' as const,
    status: '4.2.1',
    diagnostic: '450 4.2.1 busy',
    lastAttemptAt: 0,
    willRetryUntil: 86_400_000,
    record: notify ? { notify } : {},
  });

  it('a delay warning leaves out recipients whose NOTIFY has no DELAY', async () => {
    const { store, enqueued } = fakeStore();
    expect(await queueDsn(store, 'relay.test', claimed({}), 'delayed', [delayed('a@example.test'), delayed('b@example.test', ['FAILURE'])], silentLogger())).toBe('dsn1');
    expect(enqueued).toEqual(['clinic@sender.test']);
    expect(await queueDsn(store, 'relay.test', claimed({}), 'delayed', [delayed('b@example.test', ['NEVER'])], silentLogger())).toBeUndefined();
    expect(enqueued).toHaveLength(1);
  });

  it('never to the null sender', async () => {
    const { store, enqueued } = fakeStore();
    expect(await queueDsn(store, 'relay.test', claimed({}, ''), 'delayed', [delayed('a@example.test')], silentLogger())).toBeUndefined();
    expect(enqueued).toEqual([]);
  });
});
