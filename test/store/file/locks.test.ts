import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isStoreError } from '../../../src/store/errors';
import {
  acquireSpoolLock,
  releaseLockStages,
  sweepLockStages,
  withFileLock,
  currentOwner,
  formatOwner,
  ownerIsLive,
  parseOwner,
  processFacts,
  spoolLockHolder,
  SpoolLockedError,
  type ProcessFacts,
} from '../../../src/store/file/locks';

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
  test('an empty lock (an older version killed while taking it, or damage) is contention: the caller may retry, nothing runs', async () => {
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

describe('taking a lock never leaves it empty', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sealgate-lock-'));
  });

  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function deadPid(): Promise<number> {
    const child = spawn('true', { stdio: 'ignore' });
    await new Promise((resolve) => child.once('exit', resolve));
    return child.pid!;
  }

  test('while held, the lock names this process; every lock in a folder is a link to one staging file of this process, removed on release', async () => {
    const lockFile = path.join(dir, 'm.lock');
    const other = path.join(dir, 'n.lock');
    const writeFile = jest.spyOn(fs, 'writeFile');
    try {
      const seen = await withFileLock(lockFile, async () =>
        withFileLock(other, async () => ({
          text: await fs.readFile(lockFile, 'utf8'),
          files: (await fs.readdir(dir)).sort(),
          same: (await fs.stat(lockFile)).ino === (await fs.stat(other)).ino,
        })),
      );
      await withFileLock(lockFile, async () => undefined);
      const stage = `owner.${process.pid}.`;
      expect(seen.text).toBe(formatOwner(currentOwner()));
      expect(seen.files).toEqual([expect.stringMatching(/^m\.lock$/), expect.stringMatching(/^n\.lock$/), expect.stringMatching(new RegExp(`^owner\\.${process.pid}\\.[0-9a-f]+\\.stage$`))]);
      expect(seen.same).toBe(true);
      // The owner line is written once for the folder, not once per lock.
      expect(writeFile.mock.calls.filter(([file]) => typeof file === 'string' && file.includes(stage))).toHaveLength(1);
      expect((await fs.readdir(dir)).filter((name) => !name.startsWith(stage))).toEqual([]);
      await releaseLockStages([dir]);
      expect(await fs.readdir(dir)).toEqual([]);
      // Taken again after a release: the staging file is made again.
      expect(await withFileLock(lockFile, async () => 'again')).toBe('again');
    } finally {
      writeFile.mockRestore();
      await releaseLockStages([dir]);
    }
  });

  test('a lock is as old as the last lock this process took in the folder, never older than a minute and a bit', async () => {
    const lockFile = path.join(dir, 'm.lock');
    await withFileLock(lockFile, async () => undefined);
    const stage = (await fs.readdir(dir)).find((name) => name.endsWith('.stage'))!;
    const longAgo = new Date(Date.now() - 10 * 60_000);
    await fs.utimes(path.join(dir, stage), longAgo, longAgo);
    const later = Date.now() + 61_000;
    const now = jest.spyOn(Date, 'now').mockReturnValue(later);
    try {
      const mtime = await withFileLock(lockFile, async () => (await fs.stat(lockFile)).mtimeMs);
      expect(Math.abs(mtime - later)).toBeLessThan(1_000);
    } finally {
      now.mockRestore();
      await releaseLockStages([dir]);
    }
  });

  test('a taker killed before linking leaves a staging file; the lock is free and the sweep removes only dead takers’ files', async () => {
    const dead = await deadPid();
    const lockFile = path.join(dir, 'm.lock');
    await fs.writeFile(`${lockFile}.${dead}.1.stage`, `${dead}`);
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await new Promise((resolve) => sleeper.once('spawn', resolve));
      await fs.writeFile(`${lockFile}.${sleeper.pid}.7.stage`, `${sleeper.pid}`);
      expect(await withFileLock(lockFile, async () => 'ran', { waitMs: 100 })).toBe('ran');
      await sweepLockStages(dir);
      // This process's own staging file is live too: left alone.
      expect((await fs.readdir(dir)).filter((name) => !name.startsWith(`owner.${process.pid}.`))).toEqual([`m.lock.${sleeper.pid}.7.stage`]);
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  test('a taker killed after linking leaves a lock naming its dead PID: taken over at once, not after the unowned wait', async () => {
    const dead = await deadPid();
    const lockFile = path.join(dir, 'm.lock');
    await fs.writeFile(lockFile, `${dead}`);
    expect(await withFileLock(lockFile, async () => 'ran', { waitMs: 100 })).toBe('ran');
  });

  test('many takers in one process run one at a time', async () => {
    const lockFile = path.join(dir, 'm.lock');
    let inside = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 20 }, () =>
        withFileLock(lockFile, async () => {
          inside++;
          most = Math.max(most, inside);
          await new Promise((resolve) => setTimeout(resolve, 2));
          inside--;
        }),
      ),
    );
    expect(most).toBe(1);
    await releaseLockStages([dir]);
    expect(await fs.readdir(dir)).toEqual([]);
  });
});
