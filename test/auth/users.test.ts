import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, readdirSync, utimesSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { addUser, hashPassword, listUsers, loadUsers, removeUser, UserDirectory, UsersFileError, validateUserName, verifyPassword } from '../../src/auth/users';

describe('users file', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-users-'));
    file = path.join(dir, 'users.json');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('scrypt hashes carry their parameters and a random salt, and verify', async () => {
    const a = await hashPassword('pw');
    const b = await hashPassword('pw');
    expect(a).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(a).not.toBe(b);
    await expect(verifyPassword('pw', a)).resolves.toBe(true);
    await expect(verifyPassword('pW', a)).resolves.toBe(false);
    await expect(verifyPassword('pw', 'plain-text')).resolves.toBe(false);
    await expect(verifyPassword('pw', a.replace('$16384$', '$1073741824$'))).resolves.toBe(false);
  });

  test('a missing file is an empty directory', async () => {
    await expect(loadUsers(file)).resolves.toEqual({ users: [] });
  });

  test('add, update, list and remove; the file holds hashes only, mode 0600, no temp files left', async () => {
    await expect(addUser(file, 'alice', 'secret-1')).resolves.toBe('added');
    await expect(addUser(file, 'bob', 'secret-2', { allowedSenderDomains: ['Example.COM', 'example.com', 'other.example.'] })).resolves.toBe('added');
    const created = (await listUsers(file)).find((u) => u.name === 'alice')!.createdAt;
    await expect(addUser(file, 'alice', 'secret-3')).resolves.toBe('updated');

    const users = await listUsers(file);
    expect(users.map((u) => u.name)).toEqual(['alice', 'bob']);
    expect(users[0]!.createdAt).toBe(created);
    expect(users[1]!.allowedSenderDomains).toEqual(['example.com', 'other.example']);
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain('secret-');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['users.json']);

    await expect(removeUser(file, 'alice')).resolves.toBe(true);
    await expect(removeUser(file, 'alice')).resolves.toBe(false);
    expect((await listUsers(file)).map((u) => u.name)).toEqual(['bob']);
  });

  test('names with spaces or control characters, empty passwords and bad domains are refused', async () => {
    expect(validateUserName('ok.name@example.com')).toBeUndefined();
    for (const bad of ['', 'a b', 'a\tb', 'a\nb', 'a\u0000b', 'x'.repeat(129)]) expect(validateUserName(bad)).toBeDefined();
    await expect(addUser(file, 'a b', 'pw')).rejects.toBeInstanceOf(UsersFileError);
    await expect(addUser(file, 'carol', '')).rejects.toBeInstanceOf(UsersFileError);
    await expect(addUser(file, 'carol', 'pw', { allowedSenderDomains: ['not a domain'] })).rejects.toBeInstanceOf(UsersFileError);
  });

  test('a damaged file is reported with its path', async () => {
    writeFileSync(file, '{"users": [{"name": 1}]}');
    await expect(loadUsers(file)).rejects.toThrow(file);
    writeFileSync(file, 'not json');
    await expect(loadUsers(file)).rejects.toThrow(/not valid JSON/);
  });
});

describe('UserDirectory', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-users-'));
    file = path.join(dir, 'users.json');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('verifies passwords and never returns the hash', async () => {
    await addUser(file, 'alice', 'pw-a', { allowedSenderDomains: ['a.example'] });
    const directory = new UserDirectory(file);
    await expect(directory.verify('alice', 'pw-a')).resolves.toEqual({ name: 'alice', allowedSenderDomains: ['a.example'] });
    await expect(directory.verify('alice', 'wrong')).resolves.toBeUndefined();
    await expect(directory.verify('nobody', 'pw-a')).resolves.toBeUndefined();
  });

  test('picks up users added and removed after it was created, without a restart', async () => {
    const directory = new UserDirectory(file);
    await expect(directory.verify('alice', 'pw')).resolves.toBeUndefined();
    await addUser(file, 'alice', 'pw');
    await expect(directory.verify('alice', 'pw')).resolves.toMatchObject({ name: 'alice' });
    await addUser(file, 'alice', 'pw2');
    // Make sure the change is visible even on a file system with coarse mtimes.
    const later = new Date(Date.now() + 5_000);
    utimesSync(file, later, later);
    await expect(directory.verify('alice', 'pw2')).resolves.toMatchObject({ name: 'alice' });
    await removeUser(file, 'alice');
    await expect(directory.verify('alice', 'pw2')).resolves.toBeUndefined();
  });

  test('keeps the last good copy when the file becomes unreadable', async () => {
    await addUser(file, 'alice', 'pw');
    const directory = new UserDirectory(file);
    await expect(directory.verify('alice', 'pw')).resolves.toBeDefined();
    writeFileSync(file, 'garbage');
    await expect(directory.verify('alice', 'pw')).resolves.toBeDefined();
  });
});
