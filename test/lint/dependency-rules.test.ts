import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * The dependency rules in .dependency-cruiser.cjs (run by `npm run lint`) fire on wrong-way imports:
 * dependency-cruiser runs with the project's config over small fixture trees laid out like src/.
 */

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const CONFIG = path.join(REPO_ROOT, '.dependency-cruiser.cjs');
const DEPCRUISE = path.join(REPO_ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');

interface Violation {
  rule: string;
  from: string;
  to: string;
}

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Writes `files` (path under the fixture root → source) and returns what dependency-cruiser reports. */
async function cruise(files: Record<string, string>): Promise<{ exitCode: number; violations: Violation[] }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sealgate-deps-'));
  dirs.push(dir);
  const all = { 'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'node20', strict: true }, include: ['src'] }), ...files };
  for (const [name, text] of Object.entries(all)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
  // The same reporter and exit code as `npm run lint:deps`: one "error <rule>: <from> → <to>" per violation.
  const run = promisify(execFile);
  const result = await run(process.execPath, [DEPCRUISE, 'src', '--config', CONFIG], { cwd: dir, maxBuffer: 16 * 1024 * 1024 }).then(
    (done) => ({ exitCode: 0, stdout: done.stdout }),
    (error: Error & { code?: number; stdout?: string }) => ({ exitCode: typeof error.code === 'number' ? error.code : -1, stdout: error.stdout ?? '' }),
  );
  const violations = [...result.stdout.matchAll(/error ([\w-]+): (\S+) →\s+(\S+)/g)].map((m) => ({ rule: m[1]!, from: m[2]!, to: m[3]! }));
  return { exitCode: result.exitCode, violations };
}

describe('dependency direction rules', () => {
  it('accept imports that point down the layers', async () => {
    const { exitCode, violations } = await cruise({
      'src/cli/main.ts': "import { start } from '../relay';\nimport { view } from '../admin/views';\nexport const main = () => [start(), view()];\n",
      'src/relay.ts': "import { serve } from './admin/server';\nimport { deliver } from './outbound/engine';\nexport const start = () => [serve(), deliver()];\n",
      'src/admin/server.ts': "import { deliver } from '../outbound/engine';\nexport const serve = () => deliver();\n",
      'src/admin/views.ts': "import { audit } from '../evidence/audit-log';\nexport const view = () => audit();\n",
      'src/outbound/engine.ts':
        "import { plan } from '../policy/plan';\nimport { connect } from '../smtp-client/session';\nimport { decide } from '../outcome/rule';\nimport { divert } from '../fallback/items';\nexport const deliver = () => [plan(), connect(), decide(), divert()];\n",
      'src/fallback/items.ts': "import { put } from '../store/queue';\nexport const divert = () => put();\n",
      'src/smtp-client/session.ts': "import { plan } from '../policy/plan';\nexport const connect = () => plan();\n",
      'src/outcome/rule.ts': "import type { Plan } from '../policy/plan';\nexport const decide = (p?: Plan) => p;\n",
      'src/policy/plan.ts': "import { load } from '../config/load';\nimport { log } from '../log/logger';\nexport type Plan = number;\nexport const plan = (): Plan => { log(); return load(); };\n",
      'src/store/queue.ts': "import { load } from '../config/load';\nexport const put = () => load();\n",
      'src/evidence/audit-log.ts': "import { log } from '../log/logger';\nexport const audit = () => log();\n",
      'src/config/load.ts': "import { log } from '../log/logger';\nexport const load = () => { log(); return 1; };\n",
      'src/log/logger.ts': 'export const log = () => undefined;\n',
    });
    expect(violations).toEqual([]);
    expect(exitCode).toBe(0);
  }, 60_000);

  it('reject imports that point the wrong way, type-only ones included, and cycles', async () => {
    const { exitCode, violations } = await cruise({
      'src/admin/metrics.ts': "import { cached } from '../policy/cache';\nexport interface Metrics { n: number }\nexport const m = () => cached();\n",
      'src/policy/cache.ts': "import type { Metrics } from '../admin/metrics';\nexport const cached = (x?: Metrics) => x;\n",
      'src/policy/probe.ts': "import { connect } from '../smtp-client/session';\nexport const probe = () => connect();\n",
      'src/smtp-client/session.ts': 'export const connect = () => 1;\n',
      'src/inbound/server.ts': "import type { Metrics } from '../admin/metrics';\nexport const serve = (x?: Metrics) => x;\n",
      'src/store/queue.ts': "import { probe } from '../policy/probe';\nexport const put = () => probe();\n",
      'src/fallback/items.ts': "import { deliver } from '../outbound/engine';\nexport const divert = () => deliver();\n",
      'src/outbound/engine.ts': 'export const deliver = () => 1;\n',
      'src/portal/web.ts': "import { deliver } from '../outbound/engine';\nexport const serve = () => deliver();\n",
      'src/outcome/rule.ts': "import { probe } from '../policy/probe';\nimport type { Limits } from '../config/limits';\nexport const decide = (l?: Limits) => [probe(), l];\n",
      'src/config/limits.ts': 'export interface Limits { n: number }\n',
      'src/admin/server.ts': "import { start } from '../relay';\nexport const serve = () => start();\n",
      'src/relay.ts': 'export const start = () => 1;\n',
      'src/tlsrpt/counter.ts': "import { deliver } from '../outbound/engine';\nexport const count = () => deliver();\n",
      'src/outbound/observer.ts': "import { count } from '../tlsrpt/counter';\nexport const observe = () => count();\n",
      'src/report/build.ts': "import { check } from '../outbound/check';\nexport const build = () => check();\n",
      'src/outbound/check.ts': 'export const check = () => 1;\n',
      'src/portal/stats.ts': "import { build } from '../report/build';\nexport const stats = () => build();\n",
    });
    const found = violations.map((v) => `${v.rule}: ${v.from} -> ${v.to}`).sort();
    expect(found).toEqual(
      [
        'lower-imports-upper: src/policy/cache.ts -> src/admin/metrics.ts',
        'middle-imports-admin-or-cli: src/inbound/server.ts -> src/admin/metrics.ts',
        'no-circular: src/admin/metrics.ts -> src/policy/cache.ts',
        'policy-imports-smtp-client-or-outbound: src/policy/probe.ts -> src/smtp-client/session.ts',
        'store-imports-only-config-and-log: src/store/queue.ts -> src/policy/probe.ts',
        'fallback-imports-admin-cli-or-outbound: src/fallback/items.ts -> src/outbound/engine.ts',
        'portal-imports-inbound-or-outbound: src/portal/web.ts -> src/outbound/engine.ts',
        'outcome-imports-only-types: src/outcome/rule.ts -> src/policy/probe.ts',
        'outcome-is-pure: src/outcome/rule.ts -> src/config/limits.ts',
        'relay-imported-outside-cli: src/admin/server.ts -> src/relay.ts',
        'tlsrpt-imports-only-store-policy-config-log: src/tlsrpt/counter.ts -> src/outbound/engine.ts',
        'outbound-imports-tlsrpt: src/outbound/observer.ts -> src/tlsrpt/counter.ts',
        'report-imports-only-store-evidence-config-log-mail: src/report/build.ts -> src/outbound/check.ts',
        'message-path-imports-report: src/portal/stats.ts -> src/report/build.ts',
      ].sort(),
    );
    expect(exitCode).toBe(violations.length);
  }, 60_000);
});
