import { spawn } from 'node:child_process';
import { mkdtempSync, promises as fs, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Schedule } from '../../src/store/file/schedule';
import { withFileLock } from '../../src/store/file/locks';
import { domainOf, fallbackIdOf, isFallbackId, isMessageId, jobOf, newMessageId, parseJobId } from '../../src/store/ids';
import { NotFoundError } from '../../src/store/types';
import { finalStateOf } from '../../src/store/records';

describe('ids', () => {
  test('jobOf names the message and domain of a real job id, and throws not-found for any other', () => {
    const id = newMessageId();
    expect(jobOf(`${id}/example.org`)).toEqual({ messageId: id, domain: 'example.org' });
    for (const bad of ['nope', `${id}`, 'x/example.org']) expect(() => jobOf(bad)).toThrow(NotFoundError);
  });

  test('isFallbackId accepts the ids fallbackIdOf builds and nothing else', () => {
    const id = fallbackIdOf(newMessageId(), 'example.org', 'a@example.org', 1);
    expect(isFallbackId(id)).toBe(true);
    for (const bad of ['', `${id}x`, id.toLowerCase(), `../${id}`]) expect(isFallbackId(bad)).toBe(false);
  });

  test('message ids are 22 base32 characters that sort by time', () => {
    const early = newMessageId(1_700_000_000_000);
    const late = newMessageId(1_700_000_000_001);
    expect(isMessageId(early)).toBe(true);
    expect(early < late).toBe(true);
    expect(new Set(Array.from({ length: 1000 }, () => newMessageId())).size).toBe(1000);
  });

  test('random parts stay distinct and cover the whole alphabet across the random pool refills', () => {
    // Several thousand ids in one millisecond cross many refills of the pooled random bytes.
    const ids = Array.from({ length: 5000 }, () => newMessageId(1_700_000_000_000));
    expect(ids.every(isMessageId)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    const counts = new Map<string, number>();
    for (const id of ids) for (const char of id.slice(10)) counts.set(char, (counts.get(char) ?? 0) + 1);
    expect(counts.size).toBe(32);
    // 60,000 characters over 32 symbols: about 1,875 each; a reused or stuck byte range would skew this.
    for (const count of counts.values()) expect(count).toBeGreaterThan(1500);
  });

  test('job ids split back into message id and domain; fallback ids are stable per attempt', () => {
    expect(parseJobId('01ARZ3NDEKTSV4RRFFQ69G5FAV/example.test')).toEqual({ messageId: '01ARZ3NDEKTSV4RRFFQ69G5FAV', domain: 'example.test' });
    expect(parseJobId('no-slash')).toBeUndefined();
    expect(fallbackIdOf('M', 'd.test', 'a@d.test', 1)).toBe(fallbackIdOf('M', 'd.test', 'a@d.test', 1));
    expect(fallbackIdOf('M', 'd.test', 'a@d.test', 1)).not.toBe(fallbackIdOf('M', 'd.test', 'a@d.test', 2));
    expect(domainOf('"odd@name"@Example.TEST')).toBe('example.test');
  });

  test('final state precedence is diverted > bounced > delivered', () => {
    expect(finalStateOf(['delivered', 'bounced', 'diverted'])).toBe('diverted');
    expect(finalStateOf(['delivered', 'bounced'])).toBe('bounced');
    expect(finalStateOf(['delivered'])).toBe('delivered');
  });
});

describe('schedule', () => {
  test('hands out due jobs earliest first, honours reschedules and deletions', () => {
    const schedule = new Schedule();
    const times = Array.from({ length: 500 }, (_, i) => ((i * 7919) % 500) * 10);
    times.forEach((at, i) => schedule.set(`job${i}`, at));
    schedule.set('job0', 100_000); // rescheduled later
    schedule.delete('job1');
    const taken = schedule.takeDue(2_000, 1_000, () => false);
    const dueTimes = taken.map((id) => times[Number(id.slice(3))]!);
    expect(dueTimes).toEqual([...dueTimes].sort((a, b) => a - b));
    expect(dueTimes.every((at) => at <= 2_000)).toBe(true);
    expect(taken).not.toContain('job0');
    expect(taken).not.toContain('job1');
    expect(schedule.takeDue(2_000, 1_000, () => false)).toEqual([]);
    expect(schedule.takeDue(100_000, 1_000, () => false)).toContain('job0');
  });
});

describe('file lock', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-lock-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('serialises holders and takes over a lock whose process died', async () => {
    const lock = path.join(dir, 'm.lock');
    const order: string[] = [];
    await Promise.all(
      ['a', 'b', 'c'].map((name) =>
        withFileLock(lock, async () => {
          order.push(`${name}+`);
          await new Promise((resolve) => setTimeout(resolve, 10));
          order.push(`${name}-`);
        }),
      ),
    );
    for (let i = 0; i < order.length; i += 2) expect(order[i]!.slice(0, 1)).toBe(order[i + 1]!.slice(0, 1));

    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    await new Promise((resolve) => child.once('exit', resolve));
    await fs.writeFile(lock, String(child.pid));
    await expect(withFileLock(lock, async () => 'taken')).resolves.toBe('taken');
    await expect(fs.access(lock)).rejects.toThrow();
  });
});
