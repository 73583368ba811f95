import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Prompter } from '../../src/cli/confirm';
import { loadConfig } from '../../src/config/load';
import { silentLogger } from '../../src/log/logger';
import { FileStore } from '../../src/store/file/file-store';
import type { RecipientOutcome } from '../../src/store/types';
import { chunked, evidence, newMessage } from '../store/contract';
import { runCliInProcess, type CliRun } from './in-process';

/**
 * `sealgate queue retry|hold|release|delete` with a selection, `queue flush`, `fallback list` filters and paging,
 * `fallback release --domain`, `audit --recipient` and delete keeping evidence: in-process on a file store.
 */

let dir: string;
let configFile: string;
let auditFile: string;
let store: FileStore;

beforeEach(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-bulk-cli-'));
  configFile = path.join(dir, 'sealgate.yaml');
  auditFile = path.join(dir, 'audit.log');
  writeFileSync(
    configFile,
    JSON.stringify({
      listeners: [{ name: 'smtp', port: 0, tls: 'starttls', auth: 'required' }],
      queue: { backend: 'file', path: path.join(dir, 'queue') },
      audit: { file: auditFile },
      log: { level: 'error' },
      portal: { enabled: false },
    }),
  );
  const { config } = loadConfig(configFile);
  store = new FileStore({ path: config.queue.path, keepFinished: 86_400_000, logger: silentLogger() });
  await store.open();
});

afterEach(async () => {
  await store.close();
  jest.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

/** Enqueues a message and records one attempt: each recipient gets its outcome (deferred ones wait an hour). */
async function message(outcomes: Record<string, RecipientOutcome>): Promise<{ id: string; messageId: string }> {
  const addresses = Object.keys(outcomes);
  const messageId = `<${addresses[0]}.${Math.random().toString(36).slice(2)}@clinic.test>`;
  const record = await store.enqueue(newMessage(addresses), chunked(Buffer.from('Subject: private\r\n\r\nbody\r\n')), { messageId });
  for (const job of record.jobs) {
    let claimed = await store.claimDue('w1', 50, 60_000);
    for (const other of claimed.filter((c) => c.job.id !== job.id)) await store.releaseLease(other.job.id, 'w1');
    claimed = claimed.filter((c) => c.job.id === job.id);
    expect(claimed).toHaveLength(1);
    const recipients = job.recipients.map((r) => ({ address: r.address, outcome: outcomes[r.address]!, evidence: evidence(outcomes[r.address]!, `${outcomes[r.address]}-reason`) }));
    await store.completeJob(job.id, 'w1', { recipients, retryAt: Date.now() + 3_600_000 });
  }
  return { id: record.id, messageId };
}

function cli(prompter: Prompter | undefined, ...args: string[]): Promise<CliRun> {
  return runCliInProcess(configFile, args, prompter ? { prompter } : {});
}

const run = (...args: string[]) => cli(undefined, ...args);
const states = async (id: string) => (await store.getMessage(id))!.jobs.map((j) => `${j.domain}:${j.state}`);
const auditLines = () =>
  readFileSync(auditFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { event?: string; admin?: Record<string, unknown> })
    .filter((l) => l.event === 'admin-action')
    .map((l) => l.admin!);

test('a selection acts only after confirmation: refused off a terminal without --yes, asked on one, done with --yes', async () => {
  const a = await message({ 'x@partner.example': 'deferred' });
  const b = await message({ 'y@partner.example': 'deferred', 'z@other.example': 'deferred' });
  const c = await message({ 'w@other.example': 'deferred' });

  const refused = await run('queue', 'hold', '--domain', 'partner.example');
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain('not on a terminal');
  expect(refused.stderr).toContain('--yes');
  expect(await states(a.id)).toEqual(['partner.example:deferred']);

  const questions: string[] = [];
  const no: Prompter = { isTerminal: () => true, ask: async (q) => (questions.push(q), false) };
  const cancelled = await cli(no, 'queue', 'hold', '--domain', 'partner.example');
  expect(cancelled.code).toBe(1);
  expect(questions).toEqual(['hold 2 messages of partner.example? [y/N] ']);
  expect(await states(b.id)).toEqual(['partner.example:deferred', 'other.example:deferred']);

  const yes: Prompter = { isTerminal: () => true, ask: async () => true };
  const asked = await cli(yes, 'queue', 'hold', '--domain', 'partner.example');
  expect(asked).toMatchObject({ code: 0, stdout: '2 messages held, 0 skipped (2 matched)\n' });
  expect(await states(b.id)).toEqual(['partner.example:held', 'other.example:deferred']);
  expect(await states(c.id)).toEqual(['other.example:deferred']);

  const released = await run('queue', 'release', '--domain', 'partner.example', '--yes', '--json');
  expect(released.code).toBe(0);
  expect(JSON.parse(released.stdout)).toMatchObject({ action: 'release', selection: { domain: 'partner.example' }, matched: 2, skipped: [] });
  expect(await states(a.id)).toEqual(['partner.example:deferred']);

  // Each message's own entry (as the single action writes) plus one for the run with selection and counts.
  const entries = auditLines();
  expect(entries.map((e) => [e.action, e.id])).toEqual(
    expect.arrayContaining([
      ['queue-hold', a.id],
      ['queue-hold', b.id],
      ['queue-bulk-hold', 'selection'],
      ['queue-bulk-release', 'selection'],
    ]),
  );
  expect(entries.find((e) => e.action === 'queue-bulk-hold')).toMatchObject({ actor: expect.stringMatching(/^cli:/), selection: { domain: 'partner.example' }, matched: 2, affected: 2, skipped: 0 });
});

test('usage errors: neither id nor selection, or both', async () => {
  const none = await run('queue', 'retry');
  expect(none.code).toBe(2);
  expect(none.stderr).toContain('--all');
  const both = await run('queue', 'retry', 'SOMEID', '--all', '--yes');
  expect(both.code).toBe(2);
  expect((await run('queue', 'delete', '--state', 'nope', '--yes')).code).toBe(2);
});

test('skipped messages are listed with reasons; flush makes every deferred job due now', async () => {
  const deferred = await message({ 'x@partner.example': 'deferred' });
  const delivered = await message({ 'y@partner.example': 'delivered' });
  const retried = await run('queue', 'retry', '--all', '--yes');
  expect(retried.stdout).toBe(`1 message retried, 1 skipped (2 matched)\n  ${delivered.id}: nothing left to retry (delivered)\n`);

  expect((await store.getMessage(deferred.id))!.jobs[0]!.dueAt).toBeLessThanOrEqual(Date.now());
  // Deferred for an hour: only the flush makes it due now.
  await message({ 'z@other.example': 'deferred' });
  const flushed = await run('queue', 'flush', '--json');
  expect(flushed.code).toBe(0);
  expect(JSON.parse(flushed.stdout)).toMatchObject({ action: 'retry', selection: { state: 'deferred' }, matched: 2 });
  expect((await store.claimDue('w9', 10, 60_000)).map((c) => c.job.domain).sort()).toEqual(['other.example', 'partner.example']);
  expect(auditLines().some((l) => l.action === 'queue-flush')).toBe(true);
});

test('fallback list filters and pages, saying how to get the next page; release --domain releases only that domain', async () => {
  await message({ 'a@partner.example': 'diverted', 'b@partner.example': 'diverted', 'c@partner.example': 'diverted' });
  const other = await message({ 'd@other.example': 'diverted' });

  const first = await run('fallback', 'list', '--domain', 'partner.example', '--limit', '2');
  expect(first.code).toBe(0);
  expect(first.stdout).toContain(`page 1 of 2: 2 of 3 items; next page: sealgate --config ${configFile} fallback list --domain partner.example --limit 2 --page 2`);
  const second = JSON.parse((await run('fallback', 'list', '--domain', 'partner.example', '--limit', '2', '--page', '2', '--json')).stdout);
  expect(second).toMatchObject({ total: 3, page: 2, pages: 2, next: null });
  expect(second.items).toHaveLength(1);
  expect(JSON.parse((await run('fallback', 'list', '--recipient', 'D@other.example', '--since', '1h', '--json')).stdout)).toEqual([
    expect.objectContaining({ queueId: other.id, recipient: 'd@other.example' }),
  ]);
  expect(JSON.parse((await run('fallback', 'list', '--since', '2099-01-01', '--json')).stdout)).toEqual([]);
  expect((await run('fallback', 'list', '--since', 'soon')).code).toBe(2);

  expect((await run('fallback', 'release')).code).toBe(2);
  expect((await run('fallback', 'release', '--domain', 'partner.example')).code).toBe(2);
  const released = await run('fallback', 'release', '--domain', 'partner.example', '--yes');
  expect(released.code).toBe(0);
  expect(released.stdout).toMatch(/^3 items released, 0 skipped \(3 matched\)\n/);
  expect((await store.listFallback()).map((i) => i.recipient)).toEqual(['d@other.example']);
  expect(auditLines().find((l) => l.action === 'fallback-bulk-release')).toMatchObject({ selection: { domain: 'partner.example' }, affected: 3 });
});

test('audit --recipient answers "did my mail to dr.x go out?", text and JSON', async () => {
  const out = await message({ 'dr.x@partner.example': 'delivered', 'dr.y@partner.example': 'bounced' });
  const waiting = await message({ 'dr.x@partner.example': 'deferred' });

  const text = await run('audit', '--recipient', 'Dr.X@partner.example');
  expect(text.code).toBe(0);
  expect(text.stdout).toContain(`Message ${out.id} ${out.messageId}`);
  expect(text.stdout).toMatch(new RegExp(`${out.id}.*dr\\.x@partner\\.example DELIVERED`));
  expect(text.stdout).toMatch(/dr\.x@partner\.example\s+DELIVERED\s+\(delivered-reason\)/);
  expect(text.stdout).toMatch(new RegExp(`${waiting.id}.*DEFERRED`));
  expect(text.stdout).not.toContain('dr.y');
  expect(text.stdout).toContain('2 messages');

  const json = JSON.parse((await run('audit', '--recipient', 'dr.x@partner.example', '--since', '1h', '--json')).stdout);
  expect(json.map((o: { queueId: string; state: string }) => [o.queueId, o.state]).sort()).toEqual(
    [
      [out.id, 'delivered'],
      [waiting.id, 'deferred'],
    ].sort(),
  );
  expect((await run('audit', '--recipient', 'nobody@partner.example')).stdout).toContain('No message to nobody@partner.example');
  const listed = JSON.parse((await run('queue', 'list', '--recipient', 'DR.Y@partner.example', '--json')).stdout);
  expect(listed.map((m: { id: string }) => m.id)).toEqual([out.id]);
  expect((await run('audit')).code).toBe(2);
});

test('queue delete keeps the delivery evidence: audit still answers, the message is out of the queue', async () => {
  const done = await message({ 'dr.x@partner.example': 'delivered' });
  expect((await run('queue', 'delete', done.id)).stdout).toBe(`${done.id}: deleted\n`);

  const audit = await run('audit', done.id);
  expect(audit.code).toBe(0);
  expect(audit.stdout).toMatch(/deleted .* \(evidence kept\)/);
  expect(audit.stdout).toMatch(/dr\.x@partner\.example\s+DELIVERED/);
  expect(JSON.parse((await run('audit', done.messageId, '--json')).stdout)).toEqual([expect.objectContaining({ outcome: 'delivered', recipient: 'dr.x@partner.example' })]);
  expect(JSON.parse((await run('queue', 'list', '--json')).stdout)).toEqual([]);
  const again = await run('queue', 'delete', done.id);
  expect(again.code).toBe(6);
  expect(again.stderr).toContain('only its delivery evidence is kept');
});
