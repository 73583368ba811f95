import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { batchedDestination, createLogger } from '../../src/log/logger';

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

describe('batched log file writes', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-log-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const events = (file: string): unknown[] =>
    readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => (JSON.parse(line) as { event: unknown }).event);
  const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const until = async (done: () => boolean): Promise<void> => {
    for (let waited = 0; !done() && waited < 10_000; waited += 10) await settle(10);
  };

  test('info lines wait for the lines after them; a warning goes out at once with every line before it, in order', async () => {
    const file = path.join(dir, 'relay.log');
    const fd = openSync(file, 'w');
    // A batch time far longer than the test: only the warning can have written the info lines.
    const log = createLogger('info', batchedDestination(fd, 600_000));
    try {
      log.info({ event: 'a' }, 'first');
      log.debug({ event: 'not-logged' }, 'below the level');
      log.info({ event: 'b' }, 'second');
      await settle(50);
      expect(events(file)).toEqual([]);
      log.warn({ event: 'c' }, 'a warning');
      await until(() => events(file).length === 3);
      expect(events(file)).toEqual(['a', 'b', 'c']);
      log.error({ event: 'd' }, 'an error');
      await until(() => events(file).length === 4);
      expect(events(file)).toEqual(['a', 'b', 'c', 'd']);
    } finally {
      closeSync(fd);
    }
  });

  test('a waiting info line is written once the batch time has passed, with no line after it', async () => {
    const file = path.join(dir, 'relay.log');
    const fd = openSync(file, 'w');
    const log = createLogger('info', fd);
    try {
      log.info({ event: 'alone' }, 'only line');
      await until(() => events(file).length === 1);
      expect(events(file)).toEqual(['alone']);
    } finally {
      closeSync(fd);
    }
  });

  test('logger.flush() hands waiting lines over at once', async () => {
    const file = path.join(dir, 'relay.log');
    const fd = openSync(file, 'w');
    const log = createLogger('info', batchedDestination(fd, 600_000));
    try {
      log.info({ event: 'a' }, 'first');
      log.flush();
      await until(() => events(file).length === 1);
      expect(events(file)).toEqual(['a']);
    } finally {
      closeSync(fd);
    }
  });

  test.each([
    ['process.exit() right after an info line', "log.info({ event: 'last' }, 'x'); process.exit(3);", 3],
    ['the event loop running dry', "log.info({ event: 'last' }, 'x');", 0],
    ['an uncaught exception', "log.info({ event: 'last' }, 'x'); setImmediate(() => { throw new Error('boom'); });", 1],
  ])('a waiting line is still written on %s', (_name, code, status) => {
    const file = path.join(dir, 'child.log');
    const script = `require('tsx/cjs'); const fs = require('node:fs'); const { createLogger } = require(${JSON.stringify(path.resolve(__dirname, '../../src/log/logger.ts'))});
      const log = createLogger('info', fs.openSync(${JSON.stringify(file)}, 'w')); log.info({ event: 'first' }, 'x'); ${code}`;
    const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', cwd: path.resolve(__dirname, '../..') });
    expect(child.status).toBe(status);
    expect(events(file)).toEqual(['first', 'last']);
  });
});
