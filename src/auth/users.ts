import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../store/file/durable';

/**
 * The submission users file: JSON at config.auth.usersFile, passwords as scrypt hashes.
 * Written atomically (tmp + fsync + rename + directory fsync) so a crash never leaves it half-written.
 */

export interface User {
  name: string;
  /** `scrypt$<N>$<r>$<p>$<salt base64>$<key base64>`: parameters travel with the hash so they can be raised later. */
  hash: string;
  /** Lower-case domains this user may use as envelope sender; absent means any. */
  allowedSenderDomains?: string[];
  createdAt: string;
}

export interface UsersFile {
  users: User[];
}

export class UsersFileError extends Error {
  override name = 'UsersFileError';
}

const SCRYPT_N = 16_384;
const SCRYPT_R = 8;
const SCRYPT_P = 1;
const KEY_LENGTH = 32;
const SALT_LENGTH = 16;
/** Upper bounds on parameters read from the file, so a hand-edited hash cannot exhaust memory. */
const MAX_N = 1 << 20;
const MAX_R = 32;
const MAX_P = 16;

function scrypt(password: string, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCallback(password, salt, keyLength, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

function memoryFor(N: number, r: number): number {
  return 256 * N * r;
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_LENGTH);
  const key = await scrypt(password, salt, KEY_LENGTH, { N: SCRYPT_N, r: SCRYPT_R, p: SCRYPT_P, maxmem: memoryFor(SCRYPT_N, SCRYPT_R) });
  return `scrypt$${SCRYPT_N}$${SCRYPT_R}$${SCRYPT_P}$${salt.toString('base64')}$${key.toString('base64')}`;
}

interface ParsedHash {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  key: Buffer;
}

function parseHash(hash: string): ParsedHash | undefined {
  const parts = hash.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [N, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  if (![N, r, p].every((n) => Number.isInteger(n) && n > 0)) return undefined;
  if (N > MAX_N || (N & (N - 1)) !== 0 || r > MAX_R || p > MAX_P) return undefined;
  const salt = Buffer.from(parts[4] ?? '', 'base64');
  const key = Buffer.from(parts[5] ?? '', 'base64');
  if (salt.length === 0 || key.length < 16) return undefined;
  return { N, r, p, salt, key };
}

export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const parsed = parseHash(hash);
  if (!parsed) return false;
  const { N, r, p, salt, key } = parsed;
  const candidate = await scrypt(password, salt, key.length, { N, r, p, maxmem: memoryFor(N, r) });
  return timingSafeEqual(candidate, key);
}

/** Printable, no whitespace, no control characters, no `:` (AUTH PLAIN/LOGIN carry it), at most 128 characters. */
export function validateUserName(name: string): string | undefined {
  if (name.length === 0) return 'a user name must not be empty';
  if (name.length > 128) return 'a user name must be at most 128 characters';
  // eslint-disable-next-line no-control-regex
  if (/[\s\x00-\x1f\x7f-\x9f\u200b\u2060\ufeff]/.test(name)) return 'a user name must not contain spaces or control characters';
  return undefined;
}

const DOMAIN = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function normalizeSenderDomains(domains: readonly string[]): string[] {
  const result: string[] = [];
  for (const raw of domains) {
    const domain = raw.trim().toLowerCase().replace(/\.$/, '');
    if (!DOMAIN.test(domain)) throw new UsersFileError(`not a valid sender domain: ${JSON.stringify(raw)}`);
    if (!result.includes(domain)) result.push(domain);
  }
  return result;
}

function validateFile(raw: unknown, file: string): UsersFile {
  const fail = (why: string): never => {
    throw new UsersFileError(`${file}: ${why}`);
  };
  if (typeof raw !== 'object' || raw === null || !Array.isArray((raw as { users?: unknown }).users)) fail('expected {"users": [...]}');
  const users: User[] = [];
  for (const [i, entry] of (raw as { users: unknown[] }).users.entries()) {
    const u = entry as Partial<User>;
    if (typeof u !== 'object' || u === null || typeof u.name !== 'string' || typeof u.hash !== 'string') fail(`users[${i}]: expected name and hash strings`);
    const nameProblem = validateUserName(u.name!);
    if (nameProblem) fail(`users[${i}]: ${nameProblem}`);
    if (u.allowedSenderDomains !== undefined && !(Array.isArray(u.allowedSenderDomains) && u.allowedSenderDomains.every((d) => typeof d === 'string'))) {
      fail(`users[${i}].allowedSenderDomains: expected an array of domains`);
    }
    users.push({
      name: u.name!,
      hash: u.hash!,
      ...(u.allowedSenderDomains ? { allowedSenderDomains: u.allowedSenderDomains.map((d) => d.toLowerCase()) } : {}),
      createdAt: typeof u.createdAt === 'string' ? u.createdAt : '',
    });
  }
  return { users };
}

/** Reads the users file; a missing file is an empty directory. */
export async function loadUsers(file: string): Promise<UsersFile> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { users: [] };
    throw new UsersFileError(`cannot read the users file ${file}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new UsersFileError(`${file}: not valid JSON: ${(err as Error).message}`);
  }
  return validateFile(raw, file);
}

async function saveUsers(file: string, content: UsersFile): Promise<void> {
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true });
  // The same crash-safe replace the spool uses: temp file, fsync, rename, fsync of the folder.
  await writeFileAtomic(dir, file, `${JSON.stringify(content, null, 2)}\n`);
}

export interface AddUserOptions {
  allowedSenderDomains?: string[] | undefined;
}

/** Adds a user, or changes the password (and sender domains, when given) of an existing one. */
export async function addUser(file: string, name: string, password: string, opts: AddUserOptions = {}): Promise<'added' | 'updated'> {
  const problem = validateUserName(name);
  if (problem) throw new UsersFileError(problem);
  if (password.length === 0) throw new UsersFileError('an empty password is not allowed');
  const domains = opts.allowedSenderDomains ? normalizeSenderDomains(opts.allowedSenderDomains) : undefined;
  const content = await loadUsers(file);
  const hash = await hashPassword(password);
  const existing = content.users.find((u) => u.name === name);
  if (existing) {
    existing.hash = hash;
    if (domains) existing.allowedSenderDomains = domains;
  } else {
    content.users.push({ name, hash, ...(domains ? { allowedSenderDomains: domains } : {}), createdAt: new Date().toISOString() });
  }
  await saveUsers(file, content);
  return existing ? 'updated' : 'added';
}

export async function removeUser(file: string, name: string): Promise<boolean> {
  const content = await loadUsers(file);
  const remaining = content.users.filter((u) => u.name !== name);
  if (remaining.length === content.users.length) return false;
  await saveUsers(file, { users: remaining });
  return true;
}

export async function listUsers(file: string): Promise<User[]> {
  return (await loadUsers(file)).users;
}

/** A user as the SMTP session sees it: never the hash. */
export interface AuthenticatedUser {
  name: string;
  allowedSenderDomains?: string[];
}

/**
 * Answers AUTH. Reloads the file when its mtime or size changes, so `sealgate user add` takes
 * effect without a restart; a file that became unreadable keeps the last good copy.
 */
export class UserDirectory {
  private users = new Map<string, User>();
  private stamp = '';
  private loading: Promise<void> | undefined;
  /** Verified against for unknown names, so a missing user costs the same time as a wrong password. */
  private readonly decoy = hashPassword(randomBytes(16).toString('hex'));

  constructor(private readonly file: string) {}

  async verify(name: string, password: string): Promise<AuthenticatedUser | undefined> {
    await this.refresh();
    const user = this.users.get(name);
    if (!user) {
      await verifyPassword(password, await this.decoy);
      return undefined;
    }
    if (!(await verifyPassword(password, user.hash))) return undefined;
    return { name: user.name, ...(user.allowedSenderDomains ? { allowedSenderDomains: [...user.allowedSenderDomains] } : {}) };
  }

  /**
   * Reads the file now and throws (UsersFileError, naming the file) when it exists but cannot be read or
   * parsed, where refresh() would keep the last good copy: a reload checks the file before switching to it.
   * A missing file is no users, as at start.
   */
  async load(): Promise<void> {
    let stamp = 'missing';
    try {
      const stat = await fs.stat(this.file);
      stamp = `${stat.mtimeMs}:${stat.size}:${stat.ino}`;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new UsersFileError(`cannot read the users file ${this.file}: ${(err as Error).message}`);
    }
    const content = await loadUsers(this.file);
    this.users = new Map(content.users.map((u) => [u.name, u]));
    this.stamp = stamp;
  }

  /** Re-reads the file if it changed since the last read. */
  refresh(): Promise<void> {
    this.loading ??= this.reloadIfChanged().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async reloadIfChanged(): Promise<void> {
    let stamp: string;
    try {
      const stat = await fs.stat(this.file);
      stamp = `${stat.mtimeMs}:${stat.size}:${stat.ino}`;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return;
      stamp = 'missing';
    }
    if (stamp === this.stamp) return;
    try {
      const content = await loadUsers(this.file);
      this.users = new Map(content.users.map((u) => [u.name, u]));
      this.stamp = stamp;
    } catch {
      // keep the last good copy; the CLI reports file errors to the admin
    }
  }
}
