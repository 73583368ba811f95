/**
 * Drives the file evidence log alone the way the store-designs driver does (one recipient-outcome record per message,
 * 8 appends in flight), so its CPU and system calls can be looked at without the queue around it:
 *
 *   npx tsx bench/evidence-append.ts [records] [in-flight] [dir]
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof -r tsx/cjs bench/evidence-append.ts 3000
 *   strace -c -f npx tsx bench/evidence-append.ts 1000
 *
 * `dir` must be on a disk (fsync must cost what it costs); default: a fresh folder under .bench/. The log's first
 * write (folders, index check) comes before the measured records and is not counted. Prints CPU-ms per record and
 * the log's own counters (batches, fsyncs).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { silentLogger } from '../src/log/logger';
import { FileEvidenceLog } from '../src/store/file/evidence';
import { deliveredResult, newMessage, outcomeRecords } from './store-designs/workload';
import type { ClaimedJob } from '../src/store/types';

const RECORDS = Number(process.argv[2] ?? 2000);
const IN_FLIGHT = Number(process.argv[3] ?? 8);

function claimedFor(index: number): ClaimedJob {
  const { message, headers } = newMessage(index);
  const id = `bench${index.toString(36).padStart(8, '0')}`;
  const recipients = message.recipients.map((r) => ({ address: r.address, state: 'pending' as const, attempts: 0 }));
  // Only the fields outcomeRecords and deliveredResult read.
  return { message: { ...message, id, headers }, job: { id: `${id}-0`, domain: message.recipients[0]!.address.split('@')[1]!, recipients } } as unknown as ClaimedJob;
}

async function main(): Promise<void> {
  const parent = process.argv[4] ?? path.join(__dirname, '..', '.bench');
  mkdirSync(parent, { recursive: true });
  const dir = mkdtempSync(path.join(parent, 'evidence-append-'));
  const log = new FileEvidenceLog({ path: path.join(dir, 'queue'), keepFinished: 0, logger: silentLogger() }, process.env.MARK_MS ? { indexMarkIntervalMs: Number(process.env.MARK_MS) } : {});
  try {
    const first = claimedFor(-1);
    await log.appendEvidence(outcomeRecords(first, deliveredResult(first)));
    const before = { ...log.stats };
    let next = 0;
    process.stderr.write(`MARK start ${Date.now()}\n`);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < RECORDS) {
          const claimed = claimedFor(next++);
          await log.appendEvidence(outcomeRecords(claimed, deliveredResult(claimed)));
          // The store-designs driver does other store work between two appends of one worker.
          await tick();
        }
      }),
    );
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    process.stderr.write(`MARK end ${Date.now()}\n`);
    const batches = log.stats.batches - before.batches;
    const fsyncs = log.stats.fsyncs - before.fsyncs;
    process.stdout.write(
      `${RECORDS} records, ${IN_FLIGHT} in flight: ${((cpu.user + cpu.system) / 1000 / RECORDS).toFixed(3)} CPU-ms/record ` +
        `(user ${(cpu.user / 1000 / RECORDS).toFixed(3)}, kernel ${(cpu.system / 1000 / RECORDS).toFixed(3)}), ` +
        `${(RECORDS / (wall / 1000)).toFixed(0)} records/s, ${(RECORDS / batches).toFixed(2)} records/batch, ${(fsyncs / RECORDS).toFixed(3)} fsync/record\n`,
    );
  } finally {
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
