import { promises as fs } from 'node:fs';
import path from 'node:path';

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

async function readPid(file: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt((await fs.readFile(file, 'utf8')).trim(), 10);
    return Number.isNaN(pid) ? undefined : pid;
  } catch {
    return undefined;
  }
}

/** A lock without a readable PID (its writer died between create and write) is stale after this. */
const STALE_UNOWNED_MS = 30_000;
/** A lock of a live PID older than this is stale too: the PID was reused after the writer died. */
const STALE_OWNED_MS = 5 * 60_000;
const LOCK_WAIT_MS = 10_000;

function isStale(ageMs: number, pid: number | undefined): boolean {
  if (pid === undefined) return ageMs > STALE_UNOWNED_MS;
  if (pid !== process.pid && !pidAlive(pid)) return true;
  return ageMs > STALE_OWNED_MS;
}

/**
 * Cross-process lock on one file (O_EXCL create holding our PID). A lock whose owner process is gone is
 * stale and removed. The relay and the admin CLI both take it around every read-modify-write of one
 * message, so neither loses the other's change. (Two processes removing the same stale lock at once could
 * both win; stale locks only follow a crash, so this needs a crash and a race together.)
 */
export async function withFileLock<T>(lockFile: string, task: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  let delay = 2;
  for (;;) {
    try {
      const handle = await fs.open(lockFile, 'wx', 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const stat = await fs.stat(lockFile).catch(() => undefined);
      const pid = await readPid(lockFile);
      if (stat !== undefined && isStale(Date.now() - stat.mtimeMs, pid)) {
        await fs.rm(lockFile, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for lock ${path.basename(lockFile)} (held by PID ${pid ?? 'unknown'})`, { cause: error });
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 50);
    }
  }
  try {
    return await task();
  } finally {
    await fs.rm(lockFile, { force: true });
  }
}

export const SPOOL_LOCK_FILE = 'relay.pid';

/** PID of a live process holding the spool's relay lock, if any. */
export async function spoolLockHolder(spoolPath: string): Promise<number | undefined> {
  const pid = await readPid(path.join(spoolPath, SPOOL_LOCK_FILE));
  return pid !== undefined && pidAlive(pid) ? pid : undefined;
}

/**
 * Makes this process the only relay on a file spool (two relays on one spool are not supported; the admin
 * CLI does not take this lock). Returns the function that releases it.
 */
export async function acquireSpoolLock(spoolPath: string): Promise<() => Promise<void>> {
  await fs.mkdir(spoolPath, { recursive: true });
  const file = path.join(spoolPath, SPOOL_LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await fs.open(file, 'wx', 0o600);
      await handle.writeFile(String(process.pid));
      await handle.sync();
      await handle.close();
      return async () => {
        if ((await readPid(file)) === process.pid) await fs.rm(file, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = await readPid(file);
      if (pid !== undefined && pid !== process.pid && pidAlive(pid)) {
        throw new Error(`queue spool ${spoolPath} is already used by another Sealgate relay (PID ${pid}); stop it first`, { cause: error });
      }
      // Left behind by a relay that died (or by this very process): take it over.
      await fs.rm(file, { force: true });
    }
  }
  throw new Error(`could not take the spool lock ${file}`);
}
