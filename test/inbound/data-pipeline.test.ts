import { PassThrough, type Readable } from 'node:stream';
import pino from 'pino';
import { dataFailure, newMessage, receiveMessage, type DataOutcome, type DataTransfer } from '../../src/inbound/data-pipeline';
import { GuardError } from '../../src/inbound/message-guard';
import type { HeaderFacts, NewMessage } from '../../src/store/types';

const LIMITS = { maxMessageSize: 200, maxLineLength: 1000, maxHeaderSize: 1000, maxReceivedHeaders: 50, dataGrace: 30_000, minDataRate: 0 };
const MESSAGE: NewMessage = { from: 'a@sender.example', recipients: [{ address: 'p@dest.example' }], params: {}, client: { ip: '192.0.2.1', listener: 'smarthost' }, receivedAt: Date.now() };
const RECEIVED = Buffer.from('Received: from client.test\r\n');

/** A store whose enqueue reads the whole body, then waits for `durable()` before it answers. */
function fakeStore(fail?: Error) {
  let release!: () => void;
  const written = new Promise<void>((resolve) => (release = resolve));
  const seen: { body?: Buffer; headers?: HeaderFacts; message?: NewMessage } = {};
  const store = {
    async enqueue(message: NewMessage, body: Readable, headers?: HeaderFacts) {
      const chunks: Buffer[] = [];
      for await (const chunk of body) chunks.push(chunk as Buffer);
      seen.body = Buffer.concat(chunks);
      seen.headers = headers;
      seen.message = message;
      await written;
      if (fail) throw fail;
      return { id: 'Q1' };
    },
  };
  return { store: store as unknown as DataTransfer['store'], seen, durable: () => release() };
}

function transfer(store: DataTransfer['store'], over: Partial<DataTransfer> = {}) {
  const stream = Object.assign(new PassThrough(), { byteLength: 0, sizeExceeded: false });
  let complete = false;
  const logs: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line) as Record<string, unknown>) });
  const work = receiveMessage({
    stream,
    store,
    limits: LIMITS,
    message: MESSAGE,
    received: RECEIVED,
    log,
    onComplete: () => (complete = true),
    complete: () => complete,
    onTooSlow: () => undefined,
    ...over,
  });
  return { stream, work, logs, isComplete: () => complete };
}

async function settledWithin(work: Promise<DataOutcome>, ms: number): Promise<boolean> {
  return Promise.race([work.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))]);
}

describe('receiveMessage (DATA into the store)', () => {
  test('the queue id comes only once the store says the message is durable; the body has the Received header first', async () => {
    const { store, seen, durable } = fakeStore();
    const { stream, work, isComplete } = transfer(store);
    const body = 'Subject: hi\r\nMessage-ID: <m1@sender.example>\r\n\r\nbody\r\n';
    stream.end(body);
    expect(await settledWithin(work, 100)).toBe(false);
    expect(isComplete()).toBe(true);
    durable();
    expect(await work).toEqual({ queueId: 'Q1', size: Buffer.byteLength(body) });
    expect(seen.body!.toString()).toBe(`Received: from client.test\r\n${body}`);
    expect(seen.headers).toMatchObject({ messageId: '<m1@sender.example>' });
    expect(seen.message).toBe(MESSAGE);
  });

  test('a store failure is 451 4.3.0 (store-failed) and is logged', async () => {
    const { store, durable } = fakeStore(new Error('disk on fire'));
    const { stream, work, logs } = transfer(store);
    durable();
    stream.end('Subject: hi\r\n\r\nbody\r\n');
    expect(await work).toEqual({ refusal: { reason: 'store-failed', code: 451, text: '4.3.0 Temporary failure storing the message, try again later' }, size: 21 });
    expect(logs).toContainEqual(expect.objectContaining({ event: 'store-failed', err: 'disk on fire' }));
  });

  test('a message over the size limit is 552 5.3.4 and the client is still read to its end', async () => {
    const { store, durable } = fakeStore();
    durable();
    const { stream, work } = transfer(store);
    stream.write('Subject: big\r\n\r\n');
    stream.write(`${'x'.repeat(300)}\r\n`);
    const outcome = await work;
    expect(outcome).toMatchObject({ refusal: { reason: 'message-too-big', code: 552, text: '5.3.4 Message exceeds the maximum size of 200 bytes' } });
    // The rest of the client's data is drained, so the reply can follow the final dot.
    stream.end('y'.repeat(100_000));
    await new Promise((resolve) => stream.once('end', resolve));
  });

  test('51 Received fields (limit 50) are 554 5.4.6 and the store keeps nothing', async () => {
    const { store, seen, durable } = fakeStore();
    durable();
    const { stream, work } = transfer(store, { limits: { ...LIMITS, maxMessageSize: 100_000, maxHeaderSize: 100_000 } });
    for (let i = 0; i < 51; i++) stream.write(`Received: from hop${i}\r\n`);
    stream.end('Subject: loop\r\n\r\nbody\r\n');
    expect(await work).toMatchObject({ refusal: { reason: 'too-many-hops', code: 554, text: '5.4.6 Too many hops' } });
    expect(seen.body).toBeUndefined();
  });

  test('a NUL byte in the body is 550 5.6.0 and the store keeps nothing', async () => {
    const { store, seen, durable } = fakeStore();
    durable();
    const { stream, work } = transfer(store);
    stream.end('Subject: hi\r\n\r\nbody\r\n\x00.\r\nMAIL FROM:<x@y.example>\r\n');
    expect(await work).toMatchObject({ refusal: { reason: 'nul-byte', code: 550, text: '5.6.0 Message contains NUL bytes' } });
    expect(seen.body).toBeUndefined();
  });

  test('bare LF is 550 5.6.0', async () => {
    const { store, durable } = fakeStore();
    durable();
    const { stream, work } = transfer(store);
    stream.end('Subject: hi\n\nbody\n');
    expect(await work).toMatchObject({ refusal: { reason: 'bare-newline', code: 550, text: '5.6.0 Message contains bare CR or LF line endings (RFC 5321 2.3.8)' } });
  });

  test('a client that vanishes mid-DATA is 451 (client-aborted), not a store failure', async () => {
    const { store, durable } = fakeStore();
    durable();
    const { stream, work, logs } = transfer(store);
    stream.write('Subject: hi\r\n\r\npart');
    stream.destroy(new Error('socket closed'));
    expect(await work).toMatchObject({ refusal: { reason: 'client-aborted', code: 451, text: '4.3.0 Message not received in full' } });
    expect(logs.some((l) => l.event === 'store-failed')).toBe(false);
  });

  test('a client slower than minDataRate after the grace time is reported', async () => {
    const { store, durable } = fakeStore();
    durable();
    const rates: number[] = [];
    const { stream, work } = transfer(store, { limits: { ...LIMITS, dataGrace: 0, minDataRate: 1_000_000 }, onTooSlow: (rate) => rates.push(rate) });
    stream.write('Subject: slow\r\n');
    await new Promise((resolve) => setTimeout(resolve, 1_300));
    expect(rates).toHaveLength(1);
    stream.end('\r\nbody\r\n');
    expect(await work).toMatchObject({ queueId: 'Q1' });
  });
});

describe('dataFailure', () => {
  test.each([
    ['too-big', 'message-too-big', 552],
    ['header-too-big', 'header-too-big', 552],
    ['line-too-long', 'line-too-long', 552],
  ] as const)('%s is %s %d with the guard text', (problem, reason, code) => {
    expect(dataFailure(new GuardError(problem, 'Too much'), false)).toEqual({ reason, code, text: '5.3.4 Too much' });
  });
  test('a NUL byte is 550 5.6.0 nul-byte, a loop is 554 5.4.6 too-many-hops', () => {
    expect(dataFailure(new GuardError('nul-byte', 'x'), false)).toEqual({ reason: 'nul-byte', code: 550, text: '5.6.0 Message contains NUL bytes' });
    expect(dataFailure(new GuardError('too-many-hops', 'x'), false)).toEqual({ reason: 'too-many-hops', code: 554, text: '5.4.6 Too many hops' });
  });

  test('a guard problem wins over a client abort; without one, abort is client-aborted, else store-failed', () => {
    expect(dataFailure(new GuardError('bare-newline', 'x'), true)).toMatchObject({ reason: 'bare-newline', code: 550 });
    expect(dataFailure(undefined, true)).toEqual({ reason: 'client-aborted', code: 451, text: '4.3.0 Message not received in full' });
    expect(dataFailure(undefined, false)).toEqual({ reason: 'store-failed', code: 451, text: '4.3.0 Temporary failure storing the message, try again later' });
  });
});

describe('newMessage', () => {
  test('takes the MAIL parameters that matter downstream and the client facts', () => {
    const session = {
      envelope: { mailFrom: false, rcptTo: [], bodyType: '8bitmime', smtpUtf8: true, requireTLS: true, dsn: { ret: 'HDRS', envid: 'E1' } },
      hostNameAppearsAs: 'client.test',
    } as unknown as Parameters<typeof newMessage>[0];
    const message = newMessage(session, {
      ip: '192.0.2.1',
      listener: 'submission',
      sender: 'a@sender.example',
      recipients: [{ address: 'p@dest.example', notify: ['NEVER'] }],
      user: 'alice',
      tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' },
      receivedAt: 1_000,
    });
    expect(message).toEqual({
      from: 'a@sender.example',
      recipients: [{ address: 'p@dest.example', notify: ['NEVER'] }],
      params: { bodyType: '8BITMIME', smtpUtf8: true, requireTls: true, dsn: { ret: 'HDRS', envid: 'E1' } },
      client: { ip: '192.0.2.1', listener: 'submission', helo: 'client.test', user: 'alice', tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' } },
      receivedAt: 1_000,
    });
  });

  test('a plain session: 7BIT, no DSN, no user or TLS', () => {
    const session = { envelope: { mailFrom: false, rcptTo: [], bodyType: '7bit' }, hostNameAppearsAs: '' } as unknown as Parameters<typeof newMessage>[0];
    expect(newMessage(session, { ip: '192.0.2.1', listener: 'smarthost', sender: '', recipients: [], receivedAt: 5 })).toEqual({
      from: '',
      recipients: [],
      params: { bodyType: '7BIT' },
      client: { ip: '192.0.2.1', listener: 'smarthost' },
      receivedAt: 5,
    });
  });
});
