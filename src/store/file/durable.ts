import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

/** fsyncs a directory so a rename or unlink in it survives a power cut (Haraka and chasquid skip this). */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export function tempName(tmpDir: string, hint: string): string {
  return path.join(tmpDir, `${hint}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/** Called just before the rename into place, and if that rename fails (e.g. to expect its fs.watch event). */
export interface RenameHooks {
  beforeRename(): void;
  renameFailed(): void;
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
  await fs.rm(target, { force: true });
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
