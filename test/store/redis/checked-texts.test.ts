import { storedMessageSchema, jobSchema } from '../../../src/store/schema';
import { CheckedTexts } from '../../../src/store/schema';
import { checkStored, checkStoredJob } from '../../../src/store/redis/core';

const sha256 = 'a'.repeat(64);

function messageText(id: string, overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({
    id,
    from: 'sender@clinic.test',
    size: 12,
    receivedAt: 1_700_000_000_000,
    params: {},
    client: { ip: '127.0.0.1', listener: 'submission' },
    headers: {},
    sha256,
    jobIds: [`${id}/one.test`],
    ...overrides,
  });
}

function jobText(id: string, overrides: Record<string, unknown> = {}): string {
  const [messageId, domain] = id.split('/');
  return JSON.stringify({
    id,
    messageId,
    domain,
    state: 'queued',
    recipients: [{ address: 'a@one.test', state: 'pending', history: [] }],
    dueAt: 1,
    attempts: 0,
    createdAt: 1,
    updatedAt: 1,
    ...overrides,
  });
}

afterEach(() => jest.restoreAllMocks());

describe('CheckedTexts', () => {
  test('knows a text only with the id it was checked against', () => {
    const seen = new CheckedTexts(4);
    seen.add('{"id":"M1"}', 'M1');
    expect(seen.has('{"id":"M1"}', 'M1')).toBe(true);
    expect(seen.has('{"id":"M1"}', 'M2')).toBe(false);
    expect(seen.has('{"id":"M1" }', 'M1')).toBe(false);
  });

  test('forgets the oldest text first when full', () => {
    const seen = new CheckedTexts(2);
    seen.add('a', '1');
    seen.add('b', '2');
    seen.add('c', '3');
    expect([seen.has('a', '1'), seen.has('b', '2'), seen.has('c', '3')]).toEqual([false, true, true]);
  });
});

describe('checkStored and checkStoredJob', () => {
  test('a message text checked once is not run through the schema again, and reads back the same', () => {
    const id = 'MCHECKEDONCE1';
    const raw = messageText(id);
    const schema = jest.spyOn(storedMessageSchema, 'safeParse');
    const first = checkStored(raw, id);
    const second = checkStored(raw, id);
    expect(schema).toHaveBeenCalledTimes(1);
    expect(first).toEqual({ ok: true, value: JSON.parse(raw) });
    expect(second).toEqual(first);
    // A fresh object each time: a caller changing what it read does not change what the next caller reads.
    expect(second.ok && first.ok && second.value !== first.value).toBe(true);
  });

  test('a job text checked once is not run through the schema again', () => {
    const id = 'MCHECKEDONCE2/one.test';
    const raw = jobText(id);
    const schema = jest.spyOn(jobSchema, 'safeParse');
    expect(checkStoredJob(raw, id).ok).toBe(true);
    expect(checkStoredJob(raw, id).ok).toBe(true);
    expect(schema).toHaveBeenCalledTimes(1);
  });

  test('damage after a good read is still found: another text, or the same text under another key', () => {
    const id = 'MCHECKEDONCE3';
    expect(checkStored(messageText(id), id).ok).toBe(true);
    expect(checkStored(messageText(id, { size: 'twelve' }), id)).toMatchObject({ ok: false, code: 'invalid-record', reason: expect.stringContaining('size') });
    expect(checkStored(messageText(id).slice(0, -1), id)).toMatchObject({ ok: false, code: 'invalid-json' });
    expect(checkStored(messageText(id), 'MOTHERKEY')).toMatchObject({ ok: false, reason: expect.stringContaining('does not match its key') });
    const jobId = 'MCHECKEDONCE3/one.test';
    expect(checkStoredJob(jobText(jobId), jobId).ok).toBe(true);
    expect(checkStoredJob(jobText(jobId, { recipients: [] }), jobId)).toMatchObject({ ok: false, code: 'invalid-record' });
    expect(checkStoredJob(jobText(jobId), 'MOTHERKEY/one.test')).toMatchObject({ ok: false });
  });

  test('a text that failed its check is checked again every time', () => {
    const id = 'MCHECKEDONCE4';
    const raw = messageText(id, { jobIds: [] });
    const schema = jest.spyOn(storedMessageSchema, 'safeParse');
    expect(checkStored(raw, id).ok).toBe(false);
    expect(checkStored(raw, id).ok).toBe(false);
    expect(schema).toHaveBeenCalledTimes(2);
  });
});
