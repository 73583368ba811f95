import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BodyDigest, BodyVerifier } from '../../src/store/body-check';
import { newMessageRecord } from '../../src/store/records';
import { checkFallback, checkJob, checkJson, checkMessage, storedMessageSchema } from '../../src/store/schema';

/** The record schemas both backends check every read against, and the body checks. */

function record() {
  return newMessageRecord(
    '01ARZ3NDEKTSV4RRFFQ69G5FAV',
    {
      from: 'a@clinic.test',
      recipients: [{ address: 'x@one.test' }, { address: 'y@two.test', notify: ['FAILURE'] }],
      params: { bodyType: '8BITMIME' },
      client: { ip: '127.0.0.1', listener: 'submission' },
      receivedAt: 1_000,
    },
    { messageId: '<m@clinic.test>' },
    12,
    'a'.repeat(64),
  );
}

describe('record schemas', () => {
  test('accept records as the store writes them, and the same record without a checksum (older records)', () => {
    const message = record();
    expect(checkMessage(message, message.id)).toEqual({ ok: true, value: message });
    const { sha256: _sha, ...old } = message;
    expect(checkMessage(old, message.id).ok).toBe(true);
    expect(checkJob(message.jobs[0], message.jobs[0]!.id).ok).toBe(true);
    const { jobs, ...rest } = message;
    expect(checkJson(storedMessageSchema, JSON.stringify({ ...rest, jobIds: jobs.map((j) => j.id) }), 'message record', message.id).ok).toBe(true);
  });

  test('keep fields they do not know (a newer version wrote them)', () => {
    const message = { ...record(), futureField: { x: 1 } };
    expect(checkMessage(message).ok).toBe(true);
  });

  test.each([
    ['a job without recipients', (m: Record<string, any>) => delete m.jobs[0].recipients, /jobs\.0\.recipients: expected array/],
    ['a job with an empty recipient list', (m: Record<string, any>) => (m.jobs[0].recipients = []), /jobs\.0\.recipients: too small/],
    ['a message without its size', (m: Record<string, any>) => delete m.size, /size: expected number/],
    ['a stored lease state', (m: Record<string, any>) => (m.jobs[0].state = 'leased'), /jobs\.0\.state: not an allowed value/],
    ['a recipient without history', (m: Record<string, any>) => delete m.jobs[1].recipients[0].history, /history: expected array/],
    ['a malformed checksum', (m: Record<string, any>) => (m.sha256 = 'xyz'), /sha256/],
  ])('reject %s, naming the field and never a value', (_name, damage, reason) => {
    const message = record() as unknown as Record<string, any>;
    damage(message);
    const checked = checkMessage(message, '01ARZ3NDEKTSV4RRFFQ69G5FAV');
    expect(checked.ok).toBe(false);
    if (checked.ok) return;
    expect(checked.code).toBe('invalid-record');
    expect(checked.reason).toMatch(reason);
    expect(checked.reason).not.toMatch(/clinic\.test|one\.test|two\.test/);
  });

  test('reject a record stored under another id, text that is not JSON, and a fallback item without recipient', () => {
    expect(checkMessage(record(), '01ARZ3NDEKTSV4RRFFQ69G5FAW')).toMatchObject({ ok: false, reason: expect.stringMatching(/id does not match/) });
    expect(checkJson(storedMessageSchema, '{"id": "01ARZ', 'message record')).toEqual({ ok: false, code: 'invalid-json', reason: 'message record is not valid JSON' });
    expect(checkFallback({ id: 'i', queueId: 'q', jobId: 'j', from: '', reason: 'r', evidence: [], divertedAt: 1 })).toMatchObject({ ok: false, reason: expect.stringMatching(/recipient/) });
  });
});

describe('body checks', () => {
  const body = Buffer.from('Subject: t\r\n\r\nthe body\r\n');
  const sha256 = createHash('sha256').update(body).digest('hex');

  test('BodyDigest counts and hashes what passes through', async () => {
    const digest = new BodyDigest();
    const out: Buffer[] = [];
    await pipeline(Readable.from([body.subarray(0, 5), body.subarray(5)]), digest, async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) out.push(chunk);
    });
    expect(Buffer.concat(out).equals(body)).toBe(true);
    expect(digest.bytes).toBe(body.length);
    expect(digest.digest()).toBe(sha256);
  });

  async function run(data: Buffer, expected: { size: number; sha256?: string }) {
    const mismatches: string[] = [];
    const verifier = new BodyVerifier(expected, async (reason, code) => {
      mismatches.push(code);
      return new Error(reason);
    });
    let ended = false;
    verifier.on('end', () => (ended = true));
    const out: Buffer[] = [];
    const error = await pipeline(Readable.from([data]), verifier, async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) out.push(chunk);
    }).catch((err: Error) => err);
    return { error, ended, mismatches, out: Buffer.concat(out) };
  }

  test('BodyVerifier passes an intact body through and ends', async () => {
    const result = await run(body, { size: body.length, sha256 });
    expect(result).toMatchObject({ error: undefined, ended: true, mismatches: [] });
    expect(result.out.equals(body)).toBe(true);
  });

  test('BodyVerifier checks only the size of a record without a checksum', async () => {
    expect((await run(body, { size: body.length })).mismatches).toEqual([]);
    expect((await run(body.subarray(3), { size: body.length })).mismatches).toEqual(['body-size']);
  });

  test('BodyVerifier fails, without ending, a body that is short, long or changed', async () => {
    const changed = Buffer.from(body);
    changed[3] = changed[3]! ^ 1;
    for (const [data, code] of [
      [body.subarray(0, 10), 'body-size'],
      [Buffer.concat([body, Buffer.from('x')]), 'body-size'],
      [changed, 'body-checksum'],
    ] as const) {
      const result = await run(data, { size: body.length, sha256 });
      expect(result.mismatches).toEqual([code]);
      expect(result.error).toBeInstanceOf(Error);
      expect(result.ended).toBe(false);
    }
  });
});
