import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { parseConfig } from '../../src/config/load';
import { silentLogger } from '../../src/log/logger';
import { createStore } from '../../src/store';
import { configErrorOf } from './config-error';

const minimal = { listeners: [{ name: 'sub', port: 2587, tls: 'starttls', auth: 'required' }] };
const base = '/etc/sealgate';

describe('queue.backend', () => {
  test('defaults to lmdb and still accepts file', () => {
    expect(parseConfig(minimal, {}, base).queue.backend).toBe('lmdb');
    expect(parseConfig({ ...minimal, queue: { backend: 'file' } }, {}, base).queue.backend).toBe('file');
  });

  test('the shipped configurations start on lmdb', () => {
    for (const file of ['default.yaml', 'docker.yaml']) {
      const shipped = parse(readFileSync(path.join(__dirname, '../../config', file), 'utf8')) as { queue: { backend: string } };
      expect([file, shipped.queue.backend]).toEqual([file, 'lmdb']);
    }
  });

  test('an unknown backend is a config error naming queue.backend', () => {
    expect(configErrorOf(() => parseConfig({ ...minimal, queue: { backend: 'sqlite' } }, {}, base))).toMatch(/queue\.backend/);
  });

  test('lmdb opens the LMDB store in <queue.path>/lmdb', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-backend-'));
    try {
      const config = parseConfig({ ...minimal, queue: { backend: 'lmdb', path: path.join(dir, 'queue') }, evidence: { path: path.join(dir, 'evidence') } }, {}, base);
      const store = createStore(config, silentLogger());
      expect(store.kind).toBe('lmdb');
      await store.open();
      await store.ping();
      await store.close();
      expect(existsSync(path.join(dir, 'queue', 'lmdb', 'data.mdb'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
