import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT, relayFixture, type RelayFixture } from '../support/relay-process';

/**
 * The production start command as the Docker image runs it: `npm run build`'s output (tsc with
 * tsconfig.build.json) in a tree without src/, started by `node bin/sealgate start`, which must
 * pick dist/. Answers /healthz and exits 0 on SIGTERM. (~10 s, most of it tsc.)
 */

const run = promisify(execFile);

describe('compiled build (the Docker start command)', () => {
  let tree: string;
  let fixture: RelayFixture;

  beforeAll(async () => {
    tree = mkdtempSync(path.join(os.tmpdir(), 'sealgate-build-'));
    await run(process.execPath, [path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(REPO_ROOT, 'tsconfig.build.json'), '--outDir', path.join(tree, 'dist')], {
      cwd: REPO_ROOT,
      timeout: 120_000,
    });
    for (const part of ['bin', 'config', 'package.json']) cpSync(path.join(REPO_ROOT, part), path.join(tree, part), { recursive: true });
    symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(tree, 'node_modules'), 'dir');
    fixture = relayFixture({ admin: { port: 0 }, delivery: { enabled: false } });
  }, 150_000);

  afterAll(() => {
    fixture?.remove();
    if (tree) rmSync(tree, { recursive: true, force: true });
  });

  test('node bin/sealgate start runs dist/ when src/ is absent, serves /healthz, exits 0 on SIGTERM', async () => {
    expect(existsSync(path.join(tree, 'src'))).toBe(false);
    expect(existsSync(path.join(tree, 'dist', 'cli', 'main.js'))).toBe(true);

    const child = spawn(process.execPath, [path.join(tree, 'bin', 'sealgate'), '--config', fixture.configFile, 'start'], {
      cwd: tree,
      env: { ...process.env, SEALGATE_LOG_LEVEL: 'info', NODE_ENV: 'production' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
    try {
      const adminPort = await new Promise<number>((resolve, reject) => {
        let buffered = '';
        let port: number | undefined;
        child.stdout.on('data', (chunk: Buffer) => {
          buffered += chunk.toString();
          for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
            const line = buffered.slice(0, newline);
            buffered = buffered.slice(newline + 1);
            const entry = (() => {
              try {
                return JSON.parse(line) as { event?: string; port?: number };
              } catch {
                return {};
              }
            })();
            if (entry.event === 'admin-started') port = entry.port;
            if (entry.event !== 'relay-started') continue;
            if (port) resolve(port);
            else reject(new Error('relay-started without admin-started'));
          }
        });
        void exited.then((code) => reject(new Error(`exited with ${code} before starting`)));
      });
      const health = await fetch(`http://127.0.0.1:${adminPort}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: 'ok', ok: true, version: expect.any(String) });

      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      clearTimeout(kill);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }, 60_000);
});
