import { promises as fs, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../../src/log/logger';
import { addKeyEncryptionKey, loadOrCreateKeyring, newDataKey, PortalKeyError, retireKeyEncryptionKeys } from '../../../src/portal/crypto';

function recordingLogger() {
  const warnings: { obj: unknown; msg: string }[] = [];
  const logger = silentLogger();
  logger.warn = ((obj: unknown, msg: string) => warnings.push({ obj, msg })) as unknown as typeof logger.warn;
  return { logger, warnings };
}

describe('portal keyring', () => {
  let dir: string;
  let file: string;

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-keys-'));
    file = path.join(dir, 'secrets', 'portal-keys.json');
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('creates the key file with mode 0600 in a 0700 folder, with a warning, and loads it again', async () => {
    const { logger, warnings } = recordingLogger();
    const keyring = await loadOrCreateKeyring(file, logger);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toMatch(/generated a new portal key file/);
    expect(JSON.stringify(warnings[0]!.obj)).not.toMatch(/"key"/);
    const content = JSON.parse(await fs.readFile(file, 'utf8')) as { current: string; keys: { kid: string; createdAt: string }[]; lookupKey: string };
    expect(content.keys).toHaveLength(1);
    expect(content.current).toBe(keyring.currentKid);
    expect(Date.parse(content.keys[0]!.createdAt)).not.toBeNaN();
    // No temp file is left beside it.
    expect(await fs.readdir(path.dirname(file))).toEqual(['portal-keys.json']);

    const again = recordingLogger();
    const reloaded = await loadOrCreateKeyring(file, again.logger);
    expect(again.warnings).toHaveLength(0);
    expect(reloaded.currentKid).toBe(keyring.currentKid);
    const dataKey = newDataKey();
    const wrapped = keyring.wrap(dataKey);
    expect(reloaded.unwrap(wrapped.kid, wrapped.wrappedKey).equals(dataKey)).toBe(true);
    expect(reloaded.recipientHash('Pat@Example.TEST')).toBe(keyring.recipientHash('pat@example.test'));
    expect(keyring.recipientHash('pat@example.test')).toMatch(/^[0-9a-f]{64}$/);
    expect(keyring.recipientHash('pat@example.test')).not.toBe(keyring.recipientHash('pat2@example.test'));
  });

  test('refuses a key file readable by group or others', async () => {
    await loadOrCreateKeyring(file, silentLogger());
    await fs.chmod(file, 0o644);
    await expect(loadOrCreateKeyring(file, silentLogger())).rejects.toThrow(/mode 0644.*chmod 600/);
    await fs.chmod(file, 0o640);
    await expect(loadOrCreateKeyring(file, silentLogger())).rejects.toThrow(PortalKeyError);
  });

  test('refuses a file that is not a key file', async () => {
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, '{"hello": 1}', { mode: 0o600 });
    await expect(loadOrCreateKeyring(file, silentLogger())).rejects.toThrow(/not a Sealgate portal key file/);
  });

  test('unwrap fails with PortalKeyError for an unknown kid or an altered wrapped key', async () => {
    const keyring = await loadOrCreateKeyring(file, silentLogger());
    const { kid, wrappedKey } = keyring.wrap(newDataKey());
    expect(() => keyring.unwrap('kek-unknown', wrappedKey)).toThrow(PortalKeyError);
    const altered = Buffer.from(wrappedKey, 'base64');
    altered[15] = altered[15]! ^ 0x01;
    expect(() => keyring.unwrap(kid, altered.toString('base64'))).toThrow(PortalKeyError);
    expect(() => keyring.wrap(Buffer.alloc(16))).toThrow(PortalKeyError);
  });

  test('a wrapped key is bound to its kid: the same bytes under another kid fail', async () => {
    const keyring = await loadOrCreateKeyring(file, silentLogger());
    const first = keyring.wrap(newDataKey());
    const second = await addKeyEncryptionKey(file);
    await keyring.reload!();
    expect(() => keyring.unwrap(second, first.wrappedKey)).toThrow(PortalKeyError);
  });

  test('addKeyEncryptionKey makes a new current KEK, old keys still unwrap; retire drops unused ones', async () => {
    const keyring = await loadOrCreateKeyring(file, silentLogger());
    const oldKid = keyring.currentKid;
    const dataKey = newDataKey();
    const old = keyring.wrap(dataKey);

    const newKid = await addKeyEncryptionKey(file);
    expect(newKid).not.toBe(oldKid);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(keyring.currentKid).toBe(oldKid);
    await keyring.reload!();
    expect(keyring.currentKid).toBe(newKid);
    expect(keyring.kids).toEqual([oldKid, newKid]);
    expect(keyring.unwrap(old.kid, old.wrappedKey).equals(dataKey)).toBe(true);
    expect(keyring.wrap(dataKey).kid).toBe(newKid);

    // Still in use: kept.
    expect(await retireKeyEncryptionKeys(file, new Set([oldKid]))).toEqual([]);
    // No longer used: dropped; the current one always stays.
    expect(await retireKeyEncryptionKeys(file, new Set())).toEqual([oldKid]);
    await keyring.reload!();
    expect(keyring.kids).toEqual([newKid]);
    expect(() => keyring.unwrap(old.kid, old.wrappedKey)).toThrow(PortalKeyError);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  test('two processes creating the file at once end up with one key file', async () => {
    const [a, b] = await Promise.all([loadOrCreateKeyring(file, silentLogger()), loadOrCreateKeyring(file, silentLogger())]);
    expect(a.currentKid).toBe(b.currentKid);
  });
});
