import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { changedKeys, LiveConfig, ReloadRefusedError } from '../../src/config/live';
import { ConfigError, loadConfig } from '../../src/config/load';

const base = {
  listeners: [{ name: 'sub', port: 2587, tls: 'starttls', auth: 'required' }],
  domains: { 'partner.example': { level: 'encrypt' } },
};

describe('live config reload', () => {
  let dir: string;
  let file: string;
  const write = (config: unknown, comment = '') => writeFileSync(file, `${comment}${stringify(config)}`);
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-live-'));
    file = path.join(dir, 'sealgate.yaml');
    write(base);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const live = () => new LiveConfig(loadConfig(file, {}), (f) => loadConfig(f, {}));

  test('a changed domain level is applied and reported, with a new digest', async () => {
    const config = live();
    const first = config.status();
    write({ ...base, domains: { 'partner.example': { level: 'portal' } } });
    const result = await config.reload();
    expect(config.current.domains['partner.example']?.level).toBe('portal');
    expect(result.changed).toEqual(['domains.partner.example']);
    expect(result.previousDigest).toBe(first.digest);
    expect(result.digest).not.toBe(first.digest);
    expect(config.status()).toMatchObject({ digest: result.digest, reloads: 1, failedReloads: 0 });
  });

  test('comments and layout do not change the digest', async () => {
    const config = live();
    write(base, '# edited by an admin\n\n');
    const result = await config.reload();
    expect(result.digest).toBe(result.previousDigest);
    expect(result.changed).toEqual([]);
  });

  test('a change to a restart-only key is refused naming the key, and nothing changes', async () => {
    const config = live();
    const before = config.current;
    const applied: string[] = [];
    config.onReload({ name: 'domains', prepare: () => () => applied.push('domains') });
    write({ ...base, listeners: [{ ...base.listeners[0], port: 2588 }], domains: { 'partner.example': { level: 'portal' } } });
    const refused = await config.reload().catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ReloadRefusedError);
    expect((refused as ReloadRefusedError).restartKeys).toEqual(['listeners']);
    expect((refused as Error).message).toMatch(/listeners cannot change while the relay runs/);
    expect(config.current).toBe(before);
    expect(applied).toEqual([]);
    expect(config.status()).toMatchObject({ reloads: 0, failedReloads: 1 });
  });

  test('an invalid file is refused with the validation error, and nothing changes', async () => {
    const config = live();
    const before = config.current;
    write({ ...base, limits: { maxRecipients: -1 } });
    const refused = await config.reload().catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ConfigError);
    expect((refused as Error).message).toMatch(/limits\.maxRecipients/);
    expect(config.current).toBe(before);
  });

  test('a part that cannot take the new config over refuses the whole reload before any part switches', async () => {
    const config = live();
    const applied: string[] = [];
    config.onReload({ name: 'first', prepare: () => () => applied.push('first') });
    config.onReload({
      name: 'tls.cert',
      prepare: () => {
        throw new Error('cannot read /missing.pem');
      },
    });
    write({ ...base, domains: {} });
    await expect(config.reload()).rejects.toThrow('reload refused, nothing changed: tls.cert: cannot read /missing.pem');
    expect(applied).toEqual([]);
    expect(config.current.domains).toEqual(base.domains);
  });

  test('concurrent reloads run one after the other', async () => {
    const config = live();
    let inside = 0;
    let most = 0;
    config.onReload({
      name: 'slow',
      prepare: async () => {
        inside += 1;
        most = Math.max(most, inside);
        await new Promise((resolve) => setTimeout(resolve, 10));
        inside -= 1;
      },
    });
    await Promise.all([config.reload(), config.reload(), config.reload()]);
    expect(most).toBe(1);
    expect(config.status().reloads).toBe(3);
  });

  test('changedKeys names section.key for mappings and the section for lists', () => {
    const a = loadConfig(file, {}).config;
    const b = loadConfig(file, {}).config;
    b.limits.maxRecipients = 7;
    b.delivery.retrySchedule = [1000];
    b.listeners = [];
    expect(changedKeys(a, b)).toEqual(['delivery.retrySchedule', 'limits.maxRecipients', 'listeners']);
  });
});
