import { spawn } from 'node:child_process';
import { mkdtempSync, promises as fs, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../src/log/logger';
import { chainEvidence, verifyEvidence } from '../../src/store/evidence-chain';
import { FileEvidenceLog } from '../../src/store/file/evidence';
import { FileStore } from '../../src/store/file/file-store';
import type { FileStoreOptions } from '../../src/store/file/spool';
import { DAY1, DAY2, DAY3, describeEvidenceLog, outcomeInput, testClock } from './evidence-contract';
import { OLD_EVIDENCE_FOLDER, oldFolderInput } from './evidence-old-folder';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const dirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-evidence-'));
  dirs.push(dir);
  return dir;
}

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function options(dir: string, now: () => number, extra: Partial<FileStoreOptions> = {}): FileStoreOptions {
  return { path: path.join(dir, 'queue'), keepFinished: 86_400_000, logger: silentLogger(), now, ...extra };
}

describeEvidenceLog('file', async (now) => {
  const dir = tempDir();
  return {
    log: new FileEvidenceLog(options(dir, now)),
    peer: async () => new FileEvidenceLog(options(dir, now)),
    dispose: async () => rmSync(dir, { recursive: true, force: true }),
  };
});

describe('file evidence log on disk', () => {
  let dir: string;
  let clock: ReturnType<typeof testClock>;
  const segment = (day: string) => path.join(dir, 'evidence', 'segments', `${day}.jsonl`);

  beforeEach(() => {
    dir = tempDir();
    clock = testClock();
  });

  test('lives beside the spool by default, or at evidencePath, with a copy of every anchor under anchorCopy', async () => {
    const log = new FileEvidenceLog(options(dir, clock.now));
    await log.appendEvidence([outcomeInput(1)]);
    await fs.access(segment('2026-03-10'));

    const own = path.join(dir, 'elsewhere');
    const copy = path.join(dir, 'copy');
    const moved = new FileEvidenceLog(options(dir, clock.now, { evidencePath: own, anchorCopy: copy }));
    await moved.appendEvidence([outcomeInput(1)]);
    clock.set(DAY2);
    await moved.appendEvidence([outcomeInput(2)]);
    await fs.access(path.join(own, 'segments', '2026-03-11.jsonl'));
    const anchor = await fs.readFile(path.join(own, 'anchors', '2026-03-10.json'), 'utf8');
    expect(await fs.readFile(path.join(copy, '2026-03-10.json'), 'utf8')).toBe(anchor);
    await moved.pruneEvidence('2026-03-11');
    expect(await fs.readFile(path.join(copy, 'base.json'), 'utf8')).toBe(await fs.readFile(path.join(own, 'base.json'), 'utf8'));
  });

  test('FileStore hands the role to it', async () => {
    const store = new FileStore(options(dir, clock.now));
    await store.open();
    try {
      const [r] = await store.appendEvidence([outcomeInput(7)]);
      expect(r!.seq).toBe(1);
      expect((await store.evidenceHead())!.hash).toBe(r!.hash);
      expect(await verifyEvidence(store)).toMatchObject({ ok: true, records: 1 });
    } finally {
      await store.close();
    }
  });

  test('a reopened log continues the chain and its index', async () => {
    const first = new FileEvidenceLog(options(dir, clock.now));
    await first.appendEvidence([outcomeInput(1), outcomeInput(2)]);
    clock.set(DAY2);
    const reopened = new FileEvidenceLog(options(dir, clock.now));
    const [r] = await reopened.appendEvidence([outcomeInput(3, { queueId: 'Q1' })]);
    expect(r!.seq).toBe(3);
    const found: number[] = [];
    for await (const x of reopened.queryEvidence({ queueId: 'Q1' })) found.push(x.seq);
    expect(found).toEqual([1, 3]);
    expect(await verifyEvidence(reopened)).toMatchObject({ ok: true, records: 3, anchors: 1 });
  });

  test('a torn last line (a crash mid-write) is cut off at open, logged, and acknowledged records stay', async () => {
    const first = new FileEvidenceLog(options(dir, clock.now));
    const acked = await first.appendEvidence([outcomeInput(1), outcomeInput(2)]);
    await fs.appendFile(segment('2026-03-10'), '{"kind":"recipient-outcome","at":17');
    const warnings: Array<Record<string, unknown>> = [];
    const logger = { ...silentLogger(), warn: (fields: Record<string, unknown>) => warnings.push(fields) } as unknown as ReturnType<typeof silentLogger>;
    const reopened = new FileEvidenceLog(options(dir, clock.now, { logger }));
    // Readers never see the partial line.
    expect(await reopened.readEvidenceDay('2026-03-10')).toHaveLength(2);
    const [r] = await reopened.appendEvidence([outcomeInput(3)]);
    expect(warnings).toEqual([expect.objectContaining({ event: 'evidence-torn-tail', day: '2026-03-10', bytes: 35 })]);
    expect(r).toMatchObject({ seq: 3, prevHash: acked[1]!.hash });
    const text = await fs.readFile(segment('2026-03-10'), 'utf8');
    expect(text.split('\n')).toHaveLength(4);
    expect(text.endsWith('\n')).toBe(true);
    expect(await verifyEvidence(reopened)).toMatchObject({ ok: true, records: 3 });
  });

  test('a torn first line of a new day leaves the head on the day before', async () => {
    const log = new FileEvidenceLog(options(dir, clock.now));
    const [r1] = await log.appendEvidence([outcomeInput(1)]);
    await fs.writeFile(segment('2026-03-11'), '{"kind":"recipi');
    clock.set(DAY2);
    const reopened = new FileEvidenceLog(options(dir, clock.now));
    const [r2] = await reopened.appendEvidence([outcomeInput(2)]);
    expect(r2).toMatchObject({ seq: 2, day: '2026-03-11', prevHash: r1!.hash });
    expect(await verifyEvidence(reopened)).toMatchObject({ ok: true, records: 2, anchors: 1 });
  });

  test('a look-up reads only the days its index lists', async () => {
    const log = new FileEvidenceLog(options(dir, clock.now));
    await log.appendEvidence([outcomeInput(1, { queueId: 'QX', recipient: 'a@far.test' })]);
    for (const [at, n] of [
      [DAY2, 2],
      [DAY3, 3],
      [DAY3 + 86_400_000, 4],
    ] as const) {
      clock.set(at);
      await log.appendEvidence([outcomeInput(n)]);
    }
    clock.set(DAY3 + 2 * 86_400_000);
    await log.appendEvidence([outcomeInput(5, { queueId: 'QX' })]);
    const reader = new FileEvidenceLog(options(dir, clock.now));
    const found: number[] = [];
    // The first look-up of a process checks the index of the newest days; count the reads after it.
    for await (const r of reader.queryEvidence({ queueId: 'none' })) found.push(r.seq);
    const read = jest.spyOn(reader, 'readEvidenceDay');
    const anchors = jest.spyOn(reader, 'evidenceAnchors');
    for await (const r of reader.queryEvidence({ queueId: 'QX' })) found.push(r.seq);
    expect(found).toEqual([1, 5]);
    expect(read.mock.calls.map((c) => c[0])).toEqual(['2026-03-10', '2026-03-14']);
    expect(anchors).not.toHaveBeenCalled();
    read.mockClear();
    for await (const r of reader.queryEvidence({ domain: 'FAR.test' })) found.push(r.seq);
    expect(read.mock.calls.map((c) => c[0])).toEqual(['2026-03-10']);
    read.mockClear();
    // A range reads the day before `from` through the day after `to`, no more.
    for await (const r of reader.queryEvidence({ from: DAY3, to: DAY3 + 1000 })) found.push(r.seq);
    expect(read.mock.calls.map((c) => c[0])).toEqual(['2026-03-11', '2026-03-12', '2026-03-13']);
  });

  test('index lines lost in a crash are rebuilt for the newest days when a process first writes or looks up', async () => {
    const log = new FileEvidenceLog(options(dir, clock.now));
    await log.appendEvidence([outcomeInput(1, { queueId: 'QL' })]);
    await fs.rm(path.join(dir, 'evidence', 'index'), { recursive: true });
    const reader = new FileEvidenceLog(options(dir, clock.now));
    const found: number[] = [];
    for await (const r of reader.queryEvidence({ queueId: 'QL' })) found.push(r.seq);
    expect(found).toEqual([1]);
  });

  test('pruning rewrites the index buckets without the removed days', async () => {
    const log = new FileEvidenceLog(options(dir, clock.now));
    await log.appendEvidence([outcomeInput(1, { queueId: 'QP' })]);
    clock.set(DAY2);
    await log.appendEvidence([outcomeInput(2, { queueId: 'QP' })]);
    clock.set(DAY3);
    await log.appendEvidence([outcomeInput(3)]);
    await log.pruneEvidence('2026-03-11');
    const index = path.join(dir, 'evidence', 'index');
    const all: string[] = [];
    // The kinds' folders (indexed.json beside them is the index mark).
    const kinds = (await fs.readdir(index, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
    for (const kind of kinds) for (const f of await fs.readdir(path.join(index, kind))) all.push(await fs.readFile(path.join(index, kind, f), 'utf8'));
    expect(all.join('')).not.toContain('2026-03-10');
    expect(all.join('')).toContain('QP\t2026-03-11');
  });

  test('group commit: 2000 records from 50 concurrent callers cost far fewer fsyncs than records', async () => {
    const log = new FileEvidenceLog(options(dir, Date.now));
    const started = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: 50 }, async (_, c) => {
        for (let i = 0; i < 40; i++) await log.appendEvidence([outcomeInput(c * 1000 + i)]);
      }),
    );
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    process.stdout.write(`group commit: 2000 records, 50 callers: ${log.stats.fsyncs} fsyncs in ${log.stats.batches} batches, ${ms.toFixed(0)} ms\n`);
    expect(log.stats.records).toBe(2000);
    expect(log.stats.fsyncs).toBeLessThanOrEqual(2000 / 10);
    expect(await verifyEvidence(log)).toMatchObject({ ok: true, records: 2000 });
  });

  test('two processes appending at once form one chain', async () => {
    const root = path.join(dir, 'evidence');
    const child = (tag: string) =>
      new Promise<void>((resolve, reject) => {
        const script = `
          require('tsx/cjs');
          const { FileEvidenceLog } = require(${JSON.stringify(path.join(REPO_ROOT, 'src/store/file/evidence.ts'))});
          const logger = { warn() {}, info() {}, error() {}, debug() {}, child() { return logger; } };
          const log = new FileEvidenceLog({ path: ${JSON.stringify(path.join(dir, 'queue'))}, evidencePath: ${JSON.stringify(root)}, keepFinished: 1, logger });
          const input = (n) => ({ kind: 'admin-action', at: Date.now(), queueId: '${tag}' + n, messageId: null, recipient: null, sender: null, actor: 'cli:${tag}', data: { n } });
          Promise.all(Array.from({ length: 20 }, async (_, c) => { for (let i = 0; i < 10; i++) await log.appendEvidence([input(c * 10 + i), input(c * 10 + i + 1000)]); }))
            .then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });`;
        const proc = spawn(process.execPath, ['-e', script], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
        proc.once('error', reject);
        proc.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`child ${tag} exited ${code}`))));
      });
    const here = new FileEvidenceLog(options(dir, Date.now, { evidencePath: root }));
    await Promise.all([child('A'), child('B'), ...Array.from({ length: 20 }, (_, i) => here.appendEvidence([outcomeInput(i)]))]);
    const v = await verifyEvidence(here);
    expect(v).toMatchObject({ ok: true, records: 2 * 200 * 2 + 20 });
    expect((await here.evidenceHead())!.seq).toBe(820);
  }, 60_000);
});

describe('file evidence log index failures', () => {
  test('a failing index never fails an append, and is caught up once it works again', async () => {
    const dir = tempDir();
    const clock = testClock();
    const warnings: Array<Record<string, unknown>> = [];
    const logger = { ...silentLogger(), warn: (fields: Record<string, unknown>) => warnings.push(fields) } as unknown as ReturnType<typeof silentLogger>;
    // Index lines appended with every batch (the mark due at once), so the failure shows at the batch.
    const log = new FileEvidenceLog(options(dir, clock.now, { logger }), { indexMarkIntervalMs: 0 });
    await log.appendEvidence([outcomeInput(1, { queueId: 'QF' })]);
    const queueIndex = path.join(dir, 'evidence', 'index', 'queue');
    await fs.rm(queueIndex, { recursive: true });
    await fs.writeFile(queueIndex, 'not a folder');
    const [r2] = await log.appendEvidence([outcomeInput(2, { queueId: 'QG' })]);
    expect(r2!.seq).toBe(2);
    expect(warnings.map((w) => w.event)).toContain('evidence-index-failed');
    await fs.rm(queueIndex);
    // The next write of the same process catches the index up before appending.
    await log.appendEvidence([outcomeInput(3)]);
    const buckets = await fs.readdir(queueIndex);
    const text = (await Promise.all(buckets.map((b) => fs.readFile(path.join(queueIndex, b), 'utf8')))).join('');
    expect(text).toContain('QG\t2026-03-10');
    const found: number[] = [];
    for await (const r of log.queryEvidence({ queueId: 'QG' })) found.push(r.seq);
    expect(found).toEqual([2]);
  });
});

/** The seq numbers of the records a look-up by queue id finds. */
async function queueIds(log: FileEvidenceLog, queueId: string): Promise<number[]> {
  const seqs: number[] = [];
  for await (const r of log.queryEvidence({ queueId })) seqs.push(r.seq);
  return seqs;
}

describe('file evidence index mark', () => {
  let dir: string;
  let clock: ReturnType<typeof testClock>;
  const segment = () => path.join(dir, 'evidence', 'segments', '2026-03-10.jsonl');
  const markFile = () => path.join(dir, 'evidence', 'index', 'indexed.json');

  beforeEach(() => {
    dir = tempDir();
    clock = testClock();
  });

  test('a restarted process re-reads none of the log its index is marked complete through', async () => {
    const first = new FileEvidenceLog(options(dir, clock.now), { indexMarkIntervalMs: 0 });
    for (let i = 1; i <= 30; i++) await first.appendEvidence([outcomeInput(i)]);
    const reopened = new FileEvidenceLog(options(dir, clock.now));
    const [r] = await reopened.appendEvidence([outcomeInput(31)]);
    expect(r!.seq).toBe(31);
    expect(reopened.stats.reindexedBytes).toBe(0);
    expect(await queueIds(reopened, 'Q7')).toEqual([7]);
    expect(await verifyEvidence(reopened)).toMatchObject({ ok: true, records: 31 });
  });

  test('a batch fsynced but killed before its index lines is indexed by the next process, which reads only the tail after the mark', async () => {
    const first = new FileEvidenceLog(options(dir, clock.now), { indexMarkIntervalMs: 0 });
    for (let i = 1; i <= 20; i++) await first.appendEvidence([outcomeInput(i)]);
    const indexedSize = (await fs.stat(segment())).size;
    // What a kill right after the segment's fsync leaves: the record on disk, no index line, the mark before it.
    const [lost] = chainEvidence(await first.evidenceHead(), [outcomeInput(21, { queueId: 'QK' })], clock.now());
    const line = `${JSON.stringify(lost)}\n`;
    await fs.appendFile(segment(), line);
    const reopened = new FileEvidenceLog(options(dir, clock.now));
    await reopened.appendEvidence([outcomeInput(22)]);
    expect(await queueIds(reopened, 'QK')).toEqual([21]);
    expect(reopened.stats.reindexedBytes).toBe(Buffer.byteLength(line));
    expect((await fs.stat(segment())).size).toBeGreaterThan(indexedSize + Buffer.byteLength(line));
  });

  test('a mark written before a reboot is not trusted: the newest days are re-read whole', async () => {
    const first = new FileEvidenceLog(options(dir, clock.now), { indexMarkIntervalMs: 0 });
    for (let i = 1; i <= 10; i++) await first.appendEvidence([outcomeInput(i, { queueId: i === 3 ? 'QB' : `Q${i}` })]);
    // A power loss may drop index lines (never fsynced) while the mark survived.
    const queueIndex = path.join(dir, 'evidence', 'index', 'queue');
    for (const bucket of await fs.readdir(queueIndex)) {
      const file = path.join(queueIndex, bucket);
      await fs.writeFile(file, (await fs.readFile(file, 'utf8')).replace('QB\t2026-03-10\n', ''));
    }
    const mark = JSON.parse(await fs.readFile(markFile(), 'utf8')) as Record<string, unknown>;
    await fs.writeFile(markFile(), JSON.stringify({ ...mark, boot: 'an-earlier-boot' }));
    const reopened = new FileEvidenceLog(options(dir, clock.now));
    await reopened.appendEvidence([outcomeInput(11)]);
    expect(await queueIds(reopened, 'QB')).toEqual([3]);
    expect(reopened.stats.reindexedBytes).toBeGreaterThanOrEqual((await fs.stat(segment())).size - 2048);
  });

  test('records another process appended are indexed by the next write here, and the mark moves past them', async () => {
    const here = new FileEvidenceLog(options(dir, clock.now), { indexMarkIntervalMs: 0 });
    await here.appendEvidence([outcomeInput(1)]);
    // Another writer whose index lines were lost (killed after its fsync).
    const [other] = chainEvidence(await here.evidenceHead(), [outcomeInput(2, { queueId: 'QO' })], clock.now());
    await fs.appendFile(segment(), `${JSON.stringify(other)}\n`);
    const [r] = await here.appendEvidence([outcomeInput(3)]);
    expect(r!.seq).toBe(3);
    expect(await queueIds(here, 'QO')).toEqual([2]);
    const mark = JSON.parse(await fs.readFile(markFile(), 'utf8')) as { size: number };
    expect(mark.size).toBe((await fs.stat(segment())).size);
  });
});

describe('file evidence log file-system calls', () => {
  let dir: string;
  let clock: ReturnType<typeof testClock>;
  const segment = (day: string) => path.join(dir, 'evidence', 'segments', `${day}.jsonl`);

  beforeEach(() => {
    dir = tempDir();
    clock = testClock();
  });

  afterEach(() => jest.restoreAllMocks());

  test("the day's segment is opened once for many batches, again for a new day or when the path names another file", async () => {
    const log = new FileEvidenceLog(options(dir, clock.now));
    const open = jest.spyOn(fs, 'open');
    const segmentOpens = (day: string) => open.mock.calls.filter(([file, flags]) => file === segment(day) && flags === 'a').length;
    for (let i = 1; i <= 5; i++) await log.appendEvidence([outcomeInput(i)]);
    expect(segmentOpens('2026-03-10')).toBe(1);
    // Replaced by hand with the same records: the next batch goes to the file the path names now.
    const text = await fs.readFile(segment('2026-03-10'), 'utf8');
    await fs.rm(segment('2026-03-10'));
    await fs.writeFile(segment('2026-03-10'), text);
    await log.appendEvidence([outcomeInput(6)]);
    expect(segmentOpens('2026-03-10')).toBe(2);
    clock.set(DAY2);
    await log.appendEvidence([outcomeInput(7)]);
    await log.appendEvidence([outcomeInput(8)]);
    expect(segmentOpens('2026-03-11')).toBe(1);
    await log.close();
    expect(await verifyEvidence(log)).toMatchObject({ ok: true, records: 8 });
    expect((await log.readEvidenceDay('2026-03-10')).map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  test('index lines are appended together when the mark is due, not per batch; look-ups here and in another process still find every record', async () => {
    const log = new FileEvidenceLog(options(dir, clock.now));
    await log.appendEvidence([outcomeInput(1)]);
    const appendFile = jest.spyOn(fs, 'appendFile');
    for (let i = 2; i <= 40; i++) await log.appendEvidence([outcomeInput(i)]);
    // 39 batches of 4 keys each, within one mark interval: nothing appended yet.
    expect(appendFile).not.toHaveBeenCalled();
    // Another process (a CLI look-up) reads past the mark on disk and finds them.
    const other = new FileEvidenceLog(options(dir, clock.now));
    expect(await queueIds(other, 'Q33')).toEqual([33]);
    // This process appends what it gathered before looking up.
    expect(await queueIds(log, 'Q17')).toEqual([17]);
    await log.appendEvidence([outcomeInput(41, { queueId: 'QZ' })]);
    await log.close();
    const reopened = new FileEvidenceLog(options(dir, clock.now));
    await reopened.appendEvidence([outcomeInput(42)]);
    // close() appended the last lines and moved the mark past them: nothing re-read.
    expect(reopened.stats.reindexedBytes).toBe(0);
    expect(await queueIds(reopened, 'QZ')).toEqual([41]);
  });
});

describe('file evidence log batching', () => {
  let dir: string;
  let clock: ReturnType<typeof testClock>;

  beforeEach(() => {
    dir = tempDir();
    clock = testClock();
  });

  afterEach(() => jest.restoreAllMocks());

  test('appends made while a batch is still taking the lock join it: one fsync for all of them', async () => {
    const log = new FileEvidenceLog(options(dir, clock.now));
    await log.appendEvidence([outcomeInput(1)]);
    // Nothing in flight any more (close waits for the batch to finish; the log stays usable).
    await log.close();
    const before = { ...log.stats };
    // The first starts a batch at once; the others arrive before it holds the lock.
    const stored = await Promise.all(Array.from({ length: 8 }, (_, i) => log.appendEvidence([outcomeInput(i + 2), outcomeInput(i + 100)])));
    expect(log.stats.batches - before.batches).toBe(1);
    expect(log.stats.fsyncs - before.fsyncs).toBe(1);
    // Each caller gets its own records, in the order the calls were made.
    expect(stored.map((records) => records.map((r) => r.queueId))).toEqual(Array.from({ length: 8 }, (_, i) => [`Q${i + 2}`, `Q${i + 100}`]));
    expect(stored.flat().map((r) => r.seq)).toEqual(Array.from({ length: 16 }, (_, i) => i + 2));
    expect(await verifyEvidence(log)).toMatchObject({ ok: true, records: 17 });
  });

  test('a record is never logged before the time its caller set, however long the batch waited for the lock', async () => {
    const log = new FileEvidenceLog(options(dir, clock.now));
    await log.appendEvidence([outcomeInput(1)]);
    await log.close();
    const first = log.appendEvidence([outcomeInput(2)]);
    // While the first batch takes the lock, the clock moves on and a later record arrives.
    clock.set(DAY1 + 5_000);
    const second = log.appendEvidence([outcomeInput(3, { at: DAY1 + 5_000 })]);
    const [[a], [b]] = await Promise.all([first, second]);
    expect(a!.loggedAt).toBe(b!.loggedAt);
    expect(b!.loggedAt).toBeGreaterThanOrEqual(b!.at);
  });

  test('thousands of index lines gathered within one mark interval stay in memory: the bucket files are appended to once', async () => {
    const log = new FileEvidenceLog(options(dir, clock.now));
    await log.appendEvidence([outcomeInput(0)]);
    const appendFile = jest.spyOn(fs, 'appendFile');
    // 1500 records, 3 new keys each (their domains repeat): past 4096 lines.
    await Promise.all(
      Array.from({ length: 10 }, async (_, c) => {
        for (let i = 1; i <= 150; i++) await log.appendEvidence([outcomeInput(c * 150 + i)]);
      }),
    );
    expect(appendFile).not.toHaveBeenCalled();
    await log.close();
    const files = new Set(appendFile.mock.calls.map(([file]) => file as string));
    expect(files.size).toBe(appendFile.mock.calls.length);
    expect(await queueIds(log, 'Q1234')).toHaveLength(1);
  });
});

describe('file evidence log format', () => {
  let dir: string;

  beforeEach(() => {
    dir = tempDir();
  });

  async function writeFolder(root: string, files: Record<string, string>): Promise<void> {
    for (const [name, text] of Object.entries(files)) {
      await fs.mkdir(path.dirname(path.join(root, name)), { recursive: true });
      await fs.writeFile(path.join(root, name), text);
    }
  }

  async function readFolder(root: string): Promise<Record<string, string>> {
    const files: Record<string, string> = {};
    for (const sub of ['segments', 'anchors', 'index/queue', 'index/message', 'index/recipient', 'index/domain']) {
      for (const name of await fs.readdir(path.join(root, sub)).catch(() => [] as string[])) files[`${sub}/${name}`] = await fs.readFile(path.join(root, sub, name), 'utf8');
    }
    return files;
  }

  test('the same appends write byte for byte the segments, anchors and index buckets the earlier code wrote', async () => {
    const clock = testClock();
    const log = new FileEvidenceLog(options(dir, clock.now));
    await log.appendEvidence([oldFolderInput(1, clock.now()), oldFolderInput(2, clock.now())]);
    await log.appendEvidence([oldFolderInput(3, clock.now())]);
    clock.set(DAY2);
    await log.appendEvidence([oldFolderInput(4, clock.now())]);
    await log.close();
    expect(await readFolder(path.join(dir, 'evidence'))).toEqual(OLD_EVIDENCE_FOLDER);
  });

  test('a folder the earlier code wrote is read, verified, looked up in and appended to', async () => {
    const clock = testClock(DAY2);
    await writeFolder(path.join(dir, 'evidence'), OLD_EVIDENCE_FOLDER);
    const log = new FileEvidenceLog(options(dir, clock.now));
    expect(await verifyEvidence(log)).toMatchObject({ ok: true, records: 4, anchors: 1 });
    expect(await queueIds(log, 'Q2')).toEqual([2]);
    const [r] = await log.appendEvidence([oldFolderInput(5, clock.now())]);
    expect(r).toMatchObject({ seq: 5, prevHash: (await log.readEvidenceDay('2026-03-11')).map((l) => (JSON.parse(l) as { hash: string }).hash)[0] });
    await log.close();
    expect(await verifyEvidence(log)).toMatchObject({ ok: true, records: 5 });
    const reopened = new FileEvidenceLog(options(dir, clock.now));
    expect(await queueIds(reopened, 'Q5')).toEqual([5]);
    expect(await queueIds(reopened, 'Q3')).toEqual([3]);
    const domain: number[] = [];
    for await (const rec of reopened.queryEvidence({ domain: 'partner1.test' })) domain.push(rec.seq);
    expect(domain).toEqual([1, 4]);
  });
});
