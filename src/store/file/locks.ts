import { randomBytes } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import path from 'node:path';
import { StoreError } from '../errors';
import { unlinkIfPresent } from './durable';

/** Runs tasks for one key one after another inside this process (cheap, no file system). */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const current = previous.then(task, task);
    const tail = current.catch(() => undefined);
    this.tails.set(key, tail);
    try {
      return await current;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Who wrote a lock file: the PID and, where the OS tells (Linux /proc), when that process started. A PID alone
 * names a process only while it lives: after a crash or a reboot the same number can belong to anything.
 */
export interface LockOwner {
  pid: number;
  /** Start time of the process in clock ticks since boot (/proc/<pid>/stat field 22); absent in old lock files. */
  start?: string;
}

/** What the OS says about one PID. */
export interface ProcessFacts {
  /** kill(pid, 0) succeeds (or fails only for lack of permission). */
  alive: boolean;
  /** From /proc/<pid>/stat; undefined where there is no /proc (then only `alive` is known). */
  stat?: { start: string; zombie: boolean; command: string };
}

/**
 * Whether the process that wrote a lock is still the one running under its PID. Without /proc only the PID can
 * be checked (as before). With it, a different start time means the PID was reused (a reboot, or a new process
 * after a crash), and a zombie (killed, not yet reaped) holds nothing. A lock from before start times were
 * recorded counts as live only if its PID still runs Sealgate (an unrelated process never blocks).
 */
export function ownerIsLive(owner: LockOwner, facts: ProcessFacts): boolean {
  if (!facts.alive) return false;
  if (!facts.stat) return true;
  if (facts.stat.zombie) return false;
  if (owner.start !== undefined) return facts.stat.start === owner.start;
  return /sealgate/i.test(facts.stat.command);
}

/** Reads /proc/<pid>/stat (and cmdline for old lock files); undefined when the PID or /proc is not there. */
function readProcStat(pid: number): ProcessFacts['stat'] {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  let command = '';
  try {
    command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    // Unreadable command line: only the start time can decide.
  }
  return { start: fields[19] ?? '', zombie: fields[0] === 'Z', command };
}

export function processFacts(pid: number): ProcessFacts {
  const alive = pidAlive(pid);
  const stat = alive ? readProcStat(pid) : undefined;
  return { alive, ...(stat ? { stat } : {}) };
}

let ownStart: string | undefined | null = null;

/** This process as a lock owner. */
export function currentOwner(): LockOwner {
  if (ownStart === null) ownStart = readProcStat(process.pid)?.start;
  return ownStart ? { pid: process.pid, start: ownStart } : { pid: process.pid };
}

/** "PID" or "PID START": old readers of the file still find the PID first. */
export function formatOwner(owner: LockOwner): string {
  return owner.start ? `${owner.pid} ${owner.start}` : String(owner.pid);
}

export function parseOwner(text: string): LockOwner | undefined {
  const [pidText, start] = text.trim().split(/\s+/);
  const pid = Number.parseInt(pidText ?? '', 10);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return start && /^\d+$/.test(start) ? { pid, start } : { pid };
}

function isSelf(owner: LockOwner): boolean {
  const self = currentOwner();
  return owner.pid === self.pid && (owner.start === undefined || self.start === undefined || owner.start === self.start);
}

async function readOwner(file: string): Promise<LockOwner | undefined> {
  try {
    return parseOwner(await fs.readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** A lock without a readable PID (written by a version that created it empty first, or damaged) is stale after this. */
const STALE_UNOWNED_MS = 30_000;
/** A lock of a live PID older than this is stale too: the PID was reused after the writer died. */
const STALE_OWNED_MS = 5 * 60_000;
const LOCK_WAIT_MS = 10_000;

function isStale(ageMs: number, owner: LockOwner | undefined): boolean {
  if (owner === undefined) return ageMs > STALE_UNOWNED_MS;
  if (!isSelf(owner) && !ownerIsLive(owner, processFacts(owner.pid))) return true;
  return ageMs > STALE_OWNED_MS;
}

const STAGE_SUFFIX = '.stage';
/** How often a staging file's mtime is brought forward (a lock's age is its mtime; it must stay far below STALE_OWNED_MS). */
const STAGE_TOUCH_MS = 60_000;

interface Stage {
  file: string;
  touchedAt: number;
}

/** This process's staging file per lock folder, made once (see createOwnedLock). */
const stages = new Map<string, Promise<Stage>>();

async function makeStage(dir: string): Promise<Stage> {
  // "owner.<pid>.<random>.stage": the PID third from the end, where sweepLockStages looks for it.
  const file = path.join(dir, `owner.${process.pid}.${randomBytes(4).toString('hex')}${STAGE_SUFFIX}`);
  await fs.writeFile(file, formatOwner(currentOwner()), { flag: 'wx', mode: 0o600 });
  return { file, touchedAt: Date.now() };
}

function stageIn(dir: string): Promise<Stage> {
  let stage = stages.get(dir);
  if (stage === undefined) {
    stage = makeStage(dir);
    stages.set(dir, stage);
    stage.catch(() => stages.delete(dir));
  }
  return stage;
}

/**
 * Creates `lockFile` already holding our owner line, or fails with EEXIST. The owner line is written once per
 * process and folder to a staging file that every lock taken there is hard-linked from (one link to take a lock,
 * one unlink to drop it), so the lock never exists empty: a process killed while taking it leaves a lock that
 * names a dead PID (stale at once), not an unowned one that blocks everyone for STALE_UNOWNED_MS. A lock's age is
 * the staging file's mtime, brought forward at least every STAGE_TOUCH_MS while the process takes locks. The
 * staging files of dead processes are removed by sweepLockStages; releaseLockStages removes this process's.
 */
async function createOwnedLock(lockFile: string): Promise<void> {
  const dir = path.resolve(path.dirname(lockFile));
  for (let attempt = 0; ; attempt++) {
    const stage = await stageIn(dir);
    const now = Date.now();
    try {
      if (now - stage.touchedAt >= STAGE_TOUCH_MS) {
        stage.touchedAt = now;
        await fs.utimes(stage.file, now / 1000, now / 1000);
      }
      await fs.link(stage.file, lockFile);
      return;
    } catch (error) {
      // The staging file went away (released by another user of this folder in this process, or removed by
      // hand): made again once. ENOENT again means the folder itself is missing.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || attempt > 0) throw error;
      if (stages.get(dir) !== undefined && (await stages.get(dir)!.catch(() => undefined)) === stage) stages.delete(dir);
    }
  }
}

/** Removes this process's staging files (a store being closed); the next lock taken makes them again. */
export async function releaseLockStages(dirs: readonly string[]): Promise<void> {
  for (const dir of dirs.map((d) => path.resolve(d))) {
    const stage = stages.get(dir);
    if (stage === undefined) continue;
    stages.delete(dir);
    const made = await stage.catch(() => undefined);
    if (made !== undefined) await unlinkIfPresent(made.file);
  }
}

/** Removes the staging files of lock takers that died (their PID is in the name); a live taker's (ours too) are left alone. */
export async function sweepLockStages(dir: string): Promise<void> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.endsWith(STAGE_SUFFIX)) continue;
    const pid = Number(name.split('.').at(-3));
    if (pid !== process.pid && !pidAlive(pid)) await unlinkIfPresent(path.join(dir, name));
  }
}

/**
 * Cross-process lock on one file (created atomically holding our PID, see createOwnedLock). A lock whose owner process is gone is
 * stale and removed. The relay and the admin CLI both take it around every read-modify-write of one
 * message, so neither loses the other's change. (Two processes removing the same stale lock at once could
 * both win; stale locks only follow a crash, so this needs a crash and a race together.)
 */
export async function withFileLock<T>(lockFile: string, task: () => Promise<T>, options: { waitMs?: number } = {}): Promise<T> {
  const deadline = Date.now() + (options.waitMs ?? LOCK_WAIT_MS);
  let delay = 2;
  for (;;) {
    try {
      await createOwnedLock(lockFile);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const stat = await fs.stat(lockFile).catch(() => undefined);
      const owner = await readOwner(lockFile);
      if (stat !== undefined && isStale(Date.now() - stat.mtimeMs, owner)) {
        await unlinkIfPresent(lockFile);
        continue;
      }
      // Contention, not damage: callers retry (a delivery result is then retried, never quarantined for it).
      if (Date.now() > deadline) throw new StoreError('contention', `timed out waiting for lock ${path.basename(lockFile)} (held by PID ${owner?.pid ?? 'unknown'})`, { cause: error });
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 50);
    }
  }
  try {
    return await task();
  } finally {
    await unlinkIfPresent(lockFile);
  }
}

export const SPOOL_LOCK_FILE = 'relay.pid';

/** A second relay on a spool that a live relay holds. */
export class SpoolLockedError extends Error {
  override name = 'SpoolLockedError';
  constructor(
    message: string,
    readonly holder: number,
  ) {
    super(message);
  }
}

/** PID of the live relay holding the spool's lock, if any (a lock naming a dead or reused PID is no holder). */
export async function spoolLockHolder(spoolPath: string): Promise<number | undefined> {
  const owner = await readOwner(path.join(spoolPath, SPOOL_LOCK_FILE));
  if (owner === undefined) return undefined;
  return isSelf(owner) || ownerIsLive(owner, processFacts(owner.pid)) ? owner.pid : undefined;
}

/**
 * Makes this process the only relay on a file spool (two relays on one spool are not supported; the admin
 * CLI does not take this lock). The lock file names the owner by PID and process start time, so a lock left
 * by a relay that died never blocks a start, even when its PID now belongs to another process.
 * Returns the function that releases it.
 */
export async function acquireSpoolLock(spoolPath: string): Promise<() => Promise<void>> {
  await fs.mkdir(spoolPath, { recursive: true });
  const file = path.join(spoolPath, SPOOL_LOCK_FILE);
  const self = currentOwner();
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await fs.open(file, 'wx', 0o600);
      await handle.writeFile(formatOwner(self));
      await handle.sync();
      await handle.close();
      return async () => {
        const owner = await readOwner(file);
        if (owner !== undefined && isSelf(owner)) await unlinkIfPresent(file);
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = await readOwner(file);
      if (owner !== undefined && !isSelf(owner) && ownerIsLive(owner, processFacts(owner.pid))) {
        throw new SpoolLockedError(`queue spool ${spoolPath} is already used by another Sealgate relay (PID ${owner.pid}); stop it first`, owner.pid);
      }
      // Left behind by a relay that died (or by this very process), or naming a PID now reused: take it over.
      await unlinkIfPresent(file);
    }
  }
  throw new Error(`could not take the spool lock ${file}`);
}
