import { Writable } from 'node:stream';
import { createLogger } from '../../src/log/logger';

/** A logger writing into an array of parsed lines. */
function capture(): { lines: Array<Record<string, unknown>>; log: ReturnType<typeof createLogger> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, log: createLogger('info', stream) };
}

describe('log redaction', () => {
  test('password, pass, subject and body are censored at the top level and one level down', () => {
    const { lines, log } = capture();
    log.info({ event: 'x', password: 'p1', pass: 'p2', subject: 's', body: 'b', redis: { url: 'redis://h', password: 'p3' }, message: { subject: 'hello', size: 3 } }, 'line');
    expect(lines[0]).toMatchObject({
      event: 'x',
      password: '[redacted]',
      pass: '[redacted]',
      subject: '[redacted]',
      body: '[redacted]',
      redis: { url: 'redis://h', password: '[redacted]' },
      message: { subject: '[redacted]', size: 3 },
      msg: 'line',
    });
  });

  test('a member present but undefined is still censored one level down (as pino’s own redaction did)', () => {
    const { lines, log } = capture();
    log.info({ auth: { user: 'u', pass: undefined } }, 'line');
    expect(lines[0]!.auth).toEqual({ user: 'u', pass: '[redacted]' });
  });

  test('deeper members, arrays and lines without sensitive members are written as they are', () => {
    const { lines, log } = capture();
    const entry = {
      event: 'job-attempted',
      outcomes: { delivered: 1 },
      tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' },
      domains: ['a.test', 'b.test'],
      deep: { one: { password: 'kept: two levels down' } },
    };
    log.info(entry, 'delivery attempt finished');
    const { level: _level, time: _time, service, ...rest } = lines[0]!;
    expect(service).toBe('sealgate');
    expect(rest).toEqual({ ...entry, msg: 'delivery attempt finished' });
  });

  test('the caller’s object is never changed', () => {
    const { log } = capture();
    const entry = { event: 'x', password: 'p', redis: { password: 'q' } };
    log.info(entry, 'line');
    expect(entry).toEqual({ event: 'x', password: 'p', redis: { password: 'q' } });
  });

  test('an error keeps its serialized form, with its sensitive members censored', () => {
    const { lines, log } = capture();
    const err = Object.assign(new Error('auth failed'), { code: 'EAUTH', password: 'secret' });
    log.error({ err }, 'failed');
    const logged = lines[0]!.err as Record<string, unknown>;
    expect(logged).toMatchObject({ type: 'Error', message: 'auth failed', code: 'EAUTH', password: '[redacted]' });
    expect(typeof logged.stack).toBe('string');
    log.error({ err: 'plain text' }, 'failed');
    expect(lines[1]!.err).toBe('plain text');
  });

  test('child bindings are censored the same way', () => {
    const { lines, log } = capture();
    log.child({ component: 'c', password: 'p', conn: { host: 'h', pass: 'q' } }).info({ event: 'y' }, 'line');
    expect(lines[0]).toMatchObject({ component: 'c', password: '[redacted]', conn: { host: 'h', pass: '[redacted]' }, event: 'y' });
  });

  test('a child of a child keeps both bindings, each censored', () => {
    const { lines, log } = capture();
    log
      .child({ component: 'c', conn: { pass: 'q' } })
      .child({ queueId: 'Q1', message: { subject: 's' } })
      .info({ event: 'z' }, 'line');
    expect(lines[0]).toMatchObject({ service: 'sealgate', component: 'c', conn: { pass: '[redacted]' }, queueId: 'Q1', message: { subject: '[redacted]' }, event: 'z' });
  });
});
