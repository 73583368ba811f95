import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

/** One fsync of a directory: every rename or unlink done in it before this started then survives a power cut. */
async function fsyncDirOnce(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

interface Round {
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: Error) => void;
}

function newRound(): Round {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Shares directory fsyncs between callers that ask at once. A caller asks after its rename (or unlink) has
 * completed, so any fsync that starts after the call covers it: callers join the folder's pending round, which
 * starts once the current turn of the event loop is over (every rename completed in that turn shares it). A
 * round never waits for a running fsync (ext4 already lets concurrent fsyncs share one journal commit; making
 * callers queue behind a running fsync was measured slower), and a failed fsync rejects every caller of its round.
 */
export class DirSync {
  private readonly pending = new Map<string, Round>();

  constructor(
    private readonly syncOnce: (dir: string) => Promise<void> = fsyncDirOnce,
    private readonly schedule: (start: () => void) => void = (start) => void setImmediate(start),
  ) {}

  sync(dir: string): Promise<void> {
    let round = this.pending.get(dir);
    if (round === undefined) {
      round = newRound();
      this.pending.set(dir, round);
      this.schedule(() => this.start(dir));
    }
    return round.promise;
  }

  private start(dir: string): void {
    const round = this.pending.get(dir);
    if (round === undefined) return;
    // From here on, callers form the next round: this fsync may start before their renames.
    this.pending.delete(dir);
    // An async wrapper turns a synchronous throw into this round's failure too.
    const started = (async () => this.syncOnce(dir))();
    started.then(
      () => round.resolve(),
      (error: unknown) => round.reject(error as Error),
    );
  }
}

const dirSync = new DirSync();

/**
 * fsyncs a directory so a rename or unlink in it survives a power cut (Haraka and chasquid skip this). Callers
 * that ask in the same turn of the event loop share one fsync (DirSync); each gets one that started after its call.
 */
export function fsyncDir(dir: string): Promise<void> {
  return dirSync.sync(path.resolve(dir));
}

/** Removes a file; a missing one is fine. One unlink (fs.rm stats the path first, twice). */
export async function unlinkIfPresent(file: string): Promise<void> {
  try {
    await fs.unlink(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

export function tempName(tmpDir: string, hint: string): string {
  return path.join(tmpDir, `${hint}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/** Which file a path names: a rename keeps it, any rewrite (a new temp file renamed over it) changes it. */
export interface FileIdentity {
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
}

export function sameFile(a: FileIdentity, b: FileIdentity): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs;
}

/** Called just before the rename into place, and if that rename fails (e.g. to expect its fs.watch event). */
export interface RenameHooks {
  beforeRename(): void;
  renameFailed(): void;
  /** When set, told the identity of the file written (one fstat before it is closed), before the rename. */
  written?(identity: FileIdentity): void;
}

/**
 * Replaces `target` with `data`: temp file, fsync, rename, fsync of the target's directory.
 * With `durable: false` (disposable data such as cache entries) both fsyncs are skipped, but
 * readers still never see a half-written file because the rename is atomic.
 */
export async function writeFileAtomic(tmpDir: string, target: string, data: string | Buffer, durable = true, hooks?: RenameHooks): Promise<void> {
  const temp = tempName(tmpDir, path.basename(target));
  const handle = await fs.open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(data);
    if (durable) await handle.sync();
    if (hooks?.written) {
      const { ino, size, mtimeNs } = await handle.stat({ bigint: true });
      hooks.written({ ino, size, mtimeNs });
    }
  } catch (error) {
    await handle.close().catch(() => undefined);
    await fs.rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  hooks?.beforeRename();
  try {
    await fs.rename(temp, target);
  } catch (error) {
    hooks?.renameFailed();
    await fs.rm(temp, { force: true });
    throw error;
  }
  if (durable) await fsyncDir(path.dirname(target));
}

/** Removes a file (missing is fine) and, when durable, makes the removal survive a crash. */
export async function removeFile(target: string, durable = true): Promise<void> {
  await unlinkIfPresent(target);
  if (durable) await fsyncDir(path.dirname(target));
}

export async function readJson<T>(file: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return JSON.parse(text) as T;
}
