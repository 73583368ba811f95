import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const REPO_ROOT = path.resolve(__dirname, '..');
const run = promisify(execFile);

/** The packages a process has loaded after requiring `modules` (the relay's start loads the CLI and the composition root). */
async function loadedPackages(modules: string[]): Promise<string[]> {
  const script = `
    require('tsx/cjs');
    for (const m of ${JSON.stringify(modules.map((m) => path.join(REPO_ROOT, m)))}) require(m);
    const names = new Set();
    for (const key of Object.keys(require.cache)) {
      const match = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(key);
      if (match) names.add(match[1]);
    }
    process.stdout.write(JSON.stringify([...names]));`;
  const { stdout } = await run(process.execPath, ['-e', script], { cwd: REPO_ROOT, maxBuffer: 4 * 1024 * 1024 });
  return JSON.parse(stdout) as string[];
}

describe('modules loaded by a relay start', () => {
  test('mailparser and the report, DKIM, portal-reading and CLI-prompt libraries stay unloaded until they are used', async () => {
    const loaded = await loadedPackages(['src/cli/main.ts', 'src/relay.ts']);
    // Sanity: the relay's own libraries are there.
    expect(loaded).toEqual(expect.arrayContaining(['smtp-server', 'nodemailer', 'pino', 'zod']));
    for (const lazy of ['mailparser', 'mailauth', 'sanitize-html', 'csv-stringify', 'read', 'echarts', 'playwright-core', 'ioredis', 'selfsigned']) {
      expect({ lazy, loaded: loaded.includes(lazy) }).toEqual({ lazy, loaded: false });
    }
  }, 60_000);
});
