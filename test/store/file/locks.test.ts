import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isStoreError } from '../../../src/store/errors';
import { acquireSpoolLock, withFileLock, currentOwner, formatOwner, ownerIsLive, parseOwner, processFacts, spoolLockHolder, SpoolLockedError, type ProcessFacts } from '../../../src/store/file/locks';

const running = (start: string, command = 'node bin/sealgate start'): ProcessFacts => ({ alive: true, stat: { start, zombie: false, command } });

describe('the lock owner decision (PID + process start time)', () => {
  test('a dead PID holds nothing', () => {
    expect(ownerIsLive({ pid: 42, start: '100' }, { alive: false })).toBe(false);
  });

  test('a live PID with the recorded start time is the owner', () => {
    expect(ownerIsLive({ pid: 42, start: '100' }, running('100'))).toBe(true);
  });

  test('a live PID with another start time was reused: stale', () => {
    expect(ownerIsLive({ pid: 42, start: '100' }, running('5000'))).toBe(false);
  });

  test('a zombie (killed, not yet reaped) holds nothing even with the same start time', () => {
    expect(ownerIsLive({ pid: 42, start: '100' }, { alive: true, stat: { start: '100', zombie: true, command: '' } })).toBe(false);
  });

  test('an old lock (PID only) counts only while that PID runs Sealgate', () => {
    expect(ownerIsLive({ pid: 42 }, running('100', 'node /opt/sealgate/bin/sealgate start'))).toBe(true);
    expect(ownerIsLive({ pid: 42 }, running('100', 'sleep 30'))).toBe(false);
  });

  test('without /proc only the PID can be checked', () => {
    expect(ownerIsLive({ pid: 42, start: '100' }, { alive: true })).toBe(true);
  });

  test('the lock file text: "PID START", and an old "PID" still reads', () => {
    expect(formatOwner({ pid: 42, start: '100' })).toBe('42 100');
    expect(parseOwner('42 100\n')).toEqual({ pid: 42, start: '100' });
    expect(parseOwner('42')).toEqual({ pid: 42 });
    expect(parseOwner('')).toBeUndefined();
    expect(parseOwner('x 1')).toBeUndefined();
  });
});

const linux = process.platform === 'linux';

(linux ? describe : describe.skip)('the spool lock on Linux', () => {
  let dir: string;
  let sleeper: ChildProcess | undefined;

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sealgate-lock-'));
  });

  afterEach(async () => {
    if (sleeper && sleeper.exitCode === null && sleeper.signalCode === null) {
      const exited = new Promise((resolve) => sleeper!.once('exit', resolve));
      process.kill(sleeper.pid!, 'SIGKILL');
      await exited;
    }
    sleeper = undefined;
    await fs.rm(dir, { recursive: true, force: true });
  });

  test('this process is recorded with its start time', async () => {
    const release = await acquireSpoolLock(dir);
    expect(await fs.readFile(path.join(dir, 'relay.pid'), 'utf8')).toBe(formatOwner(currentOwner()));
    expect(currentOwner().start).toMatch(/^\d+$/);
    await release();
    await expect(fs.access(path.join(dir, 'relay.pid'))).rejects.toThrow();
  });

  test('a live holder with its own start time is refused; the same PID with another start time is taken over', async () => {
    sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
    await new Promise((resolve) => sleeper!.once('spawn', resolve));
    const start = processFacts(sleeper.pid!).stat!.start;
    const file = path.join(dir, 'relay.pid');

    await fs.writeFile(file, `${sleeper.pid} ${start}`);
    await expect(acquireSpoolLock(dir)).rejects.toThrow(SpoolLockedError);
    await expect(acquireSpoolLock(dir)).rejects.toThrow(`PID ${sleeper.pid}`);
    expect(await spoolLockHolder(dir)).toBe(sleeper.pid);

    await fs.writeFile(file, `${sleeper.pid} ${Number(start) + 1}`);
    expect(await spoolLockHolder(dir)).toBeUndefined();
    const release = await acquireSpoolLock(dir);
    expect(await fs.readFile(file, 'utf8')).toBe(formatOwner(currentOwner()));
    await release();
  });
});

describe('withFileLock', () => {
  test('a lock left empty by a process killed while taking it is contention: the caller may retry, nothing runs', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sealgate-lock-'));
    try {
      const lockFile = path.join(dir, 'm.lock');
      await fs.writeFile(lockFile, '');
      let ran = false;
      const error = await withFileLock(lockFile, async () => (ran = true), { waitMs: 100 }).catch((e: unknown) => e);
      expect(isStoreError(error, 'contention')).toBe(true);
      expect(ran).toBe(false);
      // The lock is left for its owner (or for the stale rule): never removed by a waiter that gave up.
      expect(await fs.readFile(lockFile, 'utf8')).toBe('');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
