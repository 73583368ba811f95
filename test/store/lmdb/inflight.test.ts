import { evidence, chunked, newMessage } from '../contract';
import { lmdbBackend, rawEnv } from './harness';

/**
 * In-flight markers of the LMDB store: a relay that dies mid-attempt leaves one per job it was delivering, and the
 * next relay flags those jobs `resumed` when it claims them (the scheduler then logs possible-duplicate).
 */
describe('LMDB store in-flight markers', () => {
  let backend: ReturnType<typeof lmdbBackend>;

  beforeEach(() => {
    backend = lmdbBackend();
  });

  afterEach(async () => {
    await backend.dispose();
  });

  async function markers(): Promise<string[]> {
    const raw = rawEnv(backend.dir);
    try {
      return [...raw.inflight.getKeys()];
    } finally {
      await raw.close();
    }
  }

  test('a job claimed by a relay that died is resumed by the next one; a job that only waited is not', async () => {
    const first = await backend.openStore();
    const started = await first.enqueue(newMessage(['a@one.test']), chunked(Buffer.from('x\r\n')));
    const [claimed] = await first.claimDue('relay-1', 1, 60_000);
    expect(claimed!.message.id).toBe(started.id);
    const waiting = await first.enqueue(newMessage(['b@two.test']), chunked(Buffer.from('y\r\n')));
    // "SIGKILL": the first relay never records a result nor hands its lease back.
    expect(await markers()).toEqual([claimed!.job.id]);

    const second = await backend.openStore();
    const again = await second.claimDue('relay-2', 10, 60_000);
    const byMessage = Object.fromEntries(again.map((c) => [c.message.id, c.resumed === true]));
    expect(byMessage).toEqual({ [started.id]: true, [waiting.id]: false });
  });

  test('a recorded result (in its own transaction) or a handed-back lease clears the marker: nothing is resumed after a restart', async () => {
    const first = await backend.openStore();
    const deferred = await first.enqueue(newMessage(['a@one.test']), chunked(Buffer.from('x\r\n')));
    const handedBack = await first.enqueue(newMessage(['b@two.test']), chunked(Buffer.from('y\r\n')));
    expect(await first.claimDue('relay-1', 10, 60_000)).toHaveLength(2);
    await first.completeJob(deferred.jobs[0]!.id, 'relay-1', {
      recipients: [{ address: 'a@one.test', outcome: 'deferred', evidence: evidence('deferred', 'rcpt-451') }],
      retryAt: Date.now(),
    });
    await first.releaseLease(handedBack.jobs[0]!.id, 'relay-1');
    expect(await markers()).toEqual([]);

    const second = await backend.openStore();
    const again = await second.claimDue('relay-2', 10, 60_000);
    expect(again).toHaveLength(2);
    expect(again.filter((c) => c.resumed)).toEqual([]);
  });

  test('markers of jobs that are no longer waiting are removed at the first claim', async () => {
    const first = await backend.openStore();
    const gone = await first.enqueue(newMessage(['a@one.test']), chunked(Buffer.from('x\r\n')));
    await first.claimDue('relay-1', 10, 60_000);
    const admin = await backend.openStore();
    await admin.deleteMessage(gone.id);

    const second = await backend.openStore();
    expect(await second.claimDue('relay-2', 10, 60_000)).toEqual([]);
    expect(await markers()).toEqual([]);
  });

  test('only the process that claims reads markers: opening the store (an admin command) leaves them', async () => {
    const first = await backend.openStore();
    await first.enqueue(newMessage(['a@one.test']), chunked(Buffer.from('x\r\n')));
    await first.claimDue('relay-1', 10, 60_000);
    const admin = await backend.openStore();
    await admin.listMessages();
    expect(await markers()).toHaveLength(1);
  });
});
