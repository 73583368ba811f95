import { createHmac, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../log/logger';
import { aeadDecrypt, aeadEncrypt, KEY_BYTES } from './aead';
import { PortalKeyError } from './errors';

/** The key-encryption keys that wrap every portal copy's data key, plus the lookup key for recipient hashes. */
export interface Keyring {
  readonly currentKid: string;
  /** Wraps a 32-byte data key under the current KEK (AES-256-GCM, kid as associated data). */
  wrap(dataKey: Buffer): { kid: string; wrappedKey: string };
  /** PortalKeyError when the kid is unknown or the wrapped key was altered. */
  unwrap(kid: string, wrappedKey: string): Buffer;
  /** HMAC-SHA256 hex of the lower-cased address under a lookup key that never rotates. */
  recipientHash(address: string): string;
  /** Every kid this keyring can unwrap, oldest first (the file keyring has it). */
  readonly kids?: readonly string[];
  /** Re-reads the key file after addKeyEncryptionKey or retireKeyEncryptionKeys (the file keyring has it). */
  reload?(): Promise<void>;
  /** Re-reads the key file when it changed on disk (another process rotated it); cheap when it did not. */
  refresh?(): Promise<void>;
}

/*
 * The key file (JSON, mode 0600, outside the queue directory):
 *   { "version": 1, "lookupKey": base64, "current": kid, "keys": [{ "kid", "key": base64, "createdAt": ISO }] }
 * The lookup key never rotates: recipient hashes stored with the items must stay comparable.
 */
interface KeyFileEntry {
  kid: string;
  key: string;
  createdAt: string;
}
interface KeyFile {
  version: 1;
  lookupKey: string;
  current: string;
  keys: KeyFileEntry[];
}

function newKek(): KeyFileEntry {
  return {
    kid: `kek-${new Date().toISOString().slice(0, 10).replaceAll('-', '')}-${randomBytes(4).toString('hex')}`,
    key: randomBytes(KEY_BYTES).toString('base64'),
    createdAt: new Date().toISOString(),
  };
}

function kidAad(kid: string): Buffer {
  return Buffer.from(`kek|${kid}`, 'utf8');
}

/** Reads and checks the key file; refuses one that group or others could read or change. */
async function readKeyFile(file: string): Promise<KeyFile> {
  const stat = await fs.stat(file);
  if ((stat.mode & 0o077) !== 0) {
    const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
    throw new PortalKeyError(`portal key file ${file} has mode ${mode}: group or others may access it. Restrict it with: chmod 600 ${file}`);
  }
  let parsed: KeyFile;
  try {
    parsed = JSON.parse(await fs.readFile(file, 'utf8')) as KeyFile;
  } catch (error) {
    throw new PortalKeyError(`portal key file ${file} is not valid JSON`, { cause: error });
  }
  const validKey = (text: unknown) => typeof text === 'string' && Buffer.from(text, 'base64').length === KEY_BYTES;
  if (
    parsed?.version !== 1 ||
    !validKey(parsed.lookupKey) ||
    !Array.isArray(parsed.keys) ||
    parsed.keys.length === 0 ||
    !parsed.keys.every((k) => typeof k?.kid === 'string' && k.kid.length > 0 && validKey(k.key)) ||
    !parsed.keys.some((k) => k.kid === parsed.current)
  ) {
    throw new PortalKeyError(`portal key file ${file} is not a Sealgate portal key file (version 1, lookupKey, current, keys)`);
  }
  return parsed;
}

/** Writes the key file atomically (temp file 0600, fsync, rename or link, fsync of the folder). */
async function writeKeyFile(file: string, content: KeyFile, exclusive: boolean): Promise<boolean> {
  const dir = path.dirname(file);
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await fs.open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(content, null, 2)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    if (exclusive) {
      // A link fails when another process created the file first: then its keys win, never ours.
      try {
        await fs.link(temp, file);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw error;
      }
    } else {
      await fs.rename(temp, file);
    }
  } finally {
    await fs.rm(temp, { force: true });
  }
  const dirHandle = await fs.open(dir, 'r');
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
  return true;
}

class FileKeyring implements Keyring {
  private keys = new Map<string, Buffer>();
  private lookupKey = Buffer.alloc(0);
  currentKid = '';
  kids: readonly string[] = [];

  constructor(private readonly file: string) {}

  load(content: KeyFile): void {
    this.keys = new Map(content.keys.map((k) => [k.kid, Buffer.from(k.key, 'base64')]));
    this.lookupKey = Buffer.from(content.lookupKey, 'base64');
    this.currentKid = content.current;
    this.kids = content.keys.map((k) => k.kid);
  }

  private loadedStamp = '';

  async reload(): Promise<void> {
    const stamp = await this.stamp();
    this.load(await readKeyFile(this.file));
    this.loadedStamp = stamp;
  }

  async refresh(): Promise<void> {
    if ((await this.stamp()) !== this.loadedStamp) await this.reload();
  }

  /** The key file is replaced by rename on every change, so its inode and mtime say whether it changed. */
  private async stamp(): Promise<string> {
    const stat = await fs.stat(this.file);
    return `${stat.ino}:${stat.mtimeMs}:${stat.size}`;
  }

  wrap(dataKey: Buffer): { kid: string; wrappedKey: string } {
    if (dataKey.length !== KEY_BYTES) throw new PortalKeyError(`a data key has ${KEY_BYTES} bytes, not ${dataKey.length}`);
    const kid = this.currentKid;
    return { kid, wrappedKey: aeadEncrypt(this.keys.get(kid)!, dataKey, kidAad(kid)).toString('base64') };
  }

  unwrap(kid: string, wrappedKey: string): Buffer {
    const kek = this.keys.get(kid);
    if (!kek) throw new PortalKeyError(`unknown key-encryption key ${kid} (not in the portal key file)`);
    let dataKey: Buffer;
    try {
      dataKey = aeadDecrypt(kek, Buffer.from(wrappedKey, 'base64'), kidAad(kid));
    } catch (error) {
      throw new PortalKeyError(`wrapped data key under ${kid} failed authentication`, { cause: error });
    }
    if (dataKey.length !== KEY_BYTES) throw new PortalKeyError(`wrapped data key under ${kid} has the wrong length`);
    return dataKey;
  }

  recipientHash(address: string): string {
    return createHmac('sha256', this.lookupKey).update(address.toLowerCase(), 'utf8').digest('hex');
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.lstat(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** Reads the key file; creates it (mode 0600, parent folder 0700) with one fresh KEK and a warning when missing. Refuses a file readable by group/others with a clear error. */
export async function loadOrCreateKeyring(file: string, logger: Logger): Promise<Keyring> {
  const keyring = new FileKeyring(file);
  if (!(await exists(file))) {
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const kek = newKek();
    const created = await writeKeyFile(file, { version: 1, lookupKey: randomBytes(KEY_BYTES).toString('base64'), current: kek.kid, keys: [kek] }, true);
    if (created) logger.warn({ event: 'portal-key-file-created', keyFile: file, kid: kek.kid }, 'generated a new portal key file; back it up: without it no portal copy can be read');
  }
  await keyring.reload();
  return keyring;
}

/** Adds a new current KEK to the file (old ones stay for unwrapping); returns the new kid. */
export async function addKeyEncryptionKey(file: string): Promise<string> {
  const content = await readKeyFile(file);
  const kek = newKek();
  await writeKeyFile(file, { ...content, current: kek.kid, keys: [...content.keys, kek] }, false);
  return kek.kid;
}

/** Drops KEKs that no item uses any more (after a rewrap). The current KEK always stays. Returns the kids dropped. */
export async function retireKeyEncryptionKeys(file: string, keep: ReadonlySet<string>): Promise<string[]> {
  const content = await readKeyFile(file);
  const retired = content.keys.filter((k) => k.kid !== content.current && !keep.has(k.kid)).map((k) => k.kid);
  if (retired.length === 0) return [];
  await writeKeyFile(file, { ...content, keys: content.keys.filter((k) => !retired.includes(k.kid)) }, false);
  return retired;
}
