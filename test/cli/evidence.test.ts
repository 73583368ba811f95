import { mkdtempSync, promises as fs, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../src/log/logger';
import { evidenceDay, verifyEvidence } from '../../src/store/evidence-chain';
import { FileEvidenceLog } from '../../src/store/file/evidence';
import type { EvidenceRecord } from '../../src/store/model';
import { outcomeInput } from '../store/evidence-contract';
import { runCliInProcess, type CliRun } from './in-process';

/**
 * `sealgate evidence verify` and `prune` on a file store's evidence log (in-process): hand edits of the segment
 * files are named at the right day, line and record; a prune removes only whole days older than the cutoff and
 * is itself recorded.
 */

const DAY = 86_400_000;
const today = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate());
/** Noon of the day `n` days ago. */
const daysAgo = (n: number) => today - n * DAY + 12 * 3_600_000;
const D5 = evidenceDay(daysAgo(5));
const D4 = evidenceDay(daysAgo(4));
const D3 = evidenceDay(daysAgo(3));

let dir: string;
let configFile: string;
let stored: EvidenceRecord[];

const evidenceDir = () => path.join(dir, 'evidence');
const segment = (day: string) => path.join(evidenceDir(), 'segments', `${day}.jsonl`);
const cli = (...args: string[]): Promise<CliRun> => runCliInProcess(configFile, args);
const reader = () => new FileEvidenceLog({ path: path.join(dir, 'queue'), keepFinished: 3_600_000, logger: silentLogger() });

async function editLines(day: string, change: (lines: string[]) => string[]): Promise<void> {
  const lines = (await fs.readFile(segment(day), 'utf8')).split('\n').slice(0, -1);
  await fs.writeFile(segment(day), change(lines).join('\n') + '\n');
}

beforeEach(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-evidence-cli-'));
  configFile = path.join(dir, 'sealgate.yaml');
  writeFileSync(
    configFile,
    JSON.stringify({
      listeners: [{ name: 'smtp', port: 0, tls: 'starttls', auth: 'required' }],
      queue: { backend: 'file', path: path.join(dir, 'queue'), keepFinished: '1h' },
      audit: { file: path.join(dir, 'audit.log') },
      evidence: { retention: '1d' },
      log: { level: 'error' },
    }),
  );
  // Three records on each of three days, five to three days ago (the last day still open).
  let clock = daysAgo(5);
  const log = new FileEvidenceLog({ path: path.join(dir, 'queue'), keepFinished: 3_600_000, logger: silentLogger(), now: () => clock });
  stored = [];
  for (const [n, at] of [daysAgo(5), daysAgo(4), daysAgo(3)].entries()) {
    clock = at;
    stored.push(...(await log.appendEvidence([1, 2, 3].map((i) => outcomeInput(n * 10 + i, { at: at - 1000 })))));
  }
});

afterEach(() => {
  jest.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

test('an intact log verifies: exit 0 with the counts', async () => {
  const run = await cli('evidence', 'verify');
  expect(run.code).toBe(0);
  expect(run.stdout).toContain(`evidence log: 3 days (${D5} to ${D3}), 9 records, 2 anchors, open day ${D3}: intact\n`);
  const json = JSON.parse((await cli('evidence', 'verify', '--json')).stdout);
  expect(json).toMatchObject({ ok: true, evidence: { ok: true, days: 3, records: 9, anchors: 2, openDay: D3, firstBroken: null } });
  const range = await cli('evidence', 'verify', '--from', D4, '--to', D4);
  expect(range).toMatchObject({ code: 0 });
  expect(range.stdout).toContain(`evidence log: 1 day (${D4}), 3 records, 2 anchors`);
  expect((await cli('evidence', 'verify', '--from', 'yesterday')).code).toBe(2);
});

test('an edited field is named at its day, line and record', async () => {
  await editLines(D4, (lines) => lines.map((line, i) => (i === 1 ? line.replace('"outcome":"delivered"', '"outcome":"bounced"') : line)));
  const run = await cli('evidence', 'verify');
  expect(run.code).toBe(1);
  expect(run.stdout).toContain(`BROKEN  evidence ${D4} line 2 (record 5): record 5 at line 2 of ${D4} was changed after it was written`);
  expect(run.stderr).toContain(`the evidence log is broken at ${D4} line 2 (record 5)`);
  const json = JSON.parse((await cli('evidence', 'verify', '--json')).stdout);
  expect(json).toMatchObject({ ok: false, evidence: { ok: false, firstBroken: { day: D4, line: 2, seq: 5 } } });
  // A range that ends before the edit is intact.
  expect((await cli('evidence', 'verify', '--to', D5)).code).toBe(0);
});

test('a deleted line is named where the record is missing', async () => {
  await editLines(D4, (lines) => lines.filter((_, i) => i !== 1));
  const run = await cli('evidence', 'verify');
  expect(run.code).toBe(1);
  expect(run.stdout).toContain(`BROKEN  evidence ${D4} line 2 (record 5): record 5 was expected at line 2 of ${D4}, found 6: a record was removed or moved`);
});

test('two swapped lines are named at the first', async () => {
  await editLines(D4, (lines) => [lines[1]!, lines[0]!, lines[2]!]);
  const run = await cli('evidence', 'verify');
  expect(run.code).toBe(1);
  expect(run.stdout).toContain(`BROKEN  evidence ${D4} line 1 (record 4): record 4 was expected at line 1 of ${D4}, found 5`);
});

test('a whole day removed with its anchor shows where the next day starts', async () => {
  await fs.rm(segment(D4));
  await fs.rm(path.join(evidenceDir(), 'anchors', `${D4}.json`));
  const run = await cli('evidence', 'verify');
  expect(run.code).toBe(1);
  expect(run.stdout).toContain(`BROKEN  evidence ${D3} line 1 (record 4): record 4 was expected at line 1 of ${D3}, found 7`);
});

test('a whole sealed day removed with its anchor, before another anchor, breaks the anchor chain', async () => {
  // Seal the open day too, so the removed day sits between two anchors.
  await reader().sealEvidence(today);
  await fs.rm(segment(D4));
  await fs.rm(path.join(evidenceDir(), 'anchors', `${D4}.json`));
  const run = await cli('evidence', 'verify');
  expect(run.code).toBe(1);
  expect(run.stdout).toContain(`BROKEN  evidence ${D3} anchor (record 4): the anchor of ${D3} does not link to the anchor before it`);
});

test('prune removes only the days before the cutoff, records itself, and verify still passes', async () => {
  const run = await cli('evidence', 'prune', '--before', D4, '--yes');
  expect(run).toMatchObject({ code: 0 });
  expect(run.stdout).toContain(`removed ${D5}: 3 records (1 to 3), anchor `);
  expect(run.stdout).toContain('1 day, 3 records removed; the log now starts after record 3; recorded as record 10');
  const log = reader();
  expect(await log.evidenceDays()).toEqual([D4, D3, evidenceDay(Date.now())]);
  const pruned: EvidenceRecord[] = [];
  for await (const r of log.queryEvidence({ kinds: ['evidence-pruned'] })) pruned.push(r);
  expect(pruned).toHaveLength(1);
  expect(pruned[0]).toMatchObject({
    seq: 10,
    actor: `cli:${os.userInfo().username}`,
    data: { before: D4, days: [D5], records: 3, anchors: [{ day: D5, lastSeq: 3, lastHash: stored[2]!.hash }] },
  });
  expect(await verifyEvidence(log)).toMatchObject({ ok: true, records: 7 });
  expect((await cli('evidence', 'verify')).code).toBe(0);
  // Nothing older left: nothing happens, nothing is recorded.
  expect((await cli('evidence', 'prune', '--before', D4, '--yes')).stdout).toBe(`nothing to prune before ${D4}\n`);
  expect((await reader().evidenceHead())!.seq).toBe(10);
});

test('prune refuses a date inside the retention, a bad date, and asks first off a terminal', async () => {
  const young = await cli('evidence', 'prune', '--before', evidenceDay(Date.now()), '--yes');
  expect(young.code).toBe(2);
  expect(young.stderr).toContain('refusing to prune before');
  expect(young.stderr).toContain('evidence.retention (1 days)');
  expect((await cli('evidence', 'prune', '--before', '2026-02-30', '--yes')).code).toBe(2);
  const unasked = await cli('evidence', 'prune', '--before', D4);
  expect(unasked.code).toBe(2);
  expect(unasked.stderr).toContain('add --yes');
  expect(await reader().evidenceDays()).toEqual([D5, D4, D3]);
});
