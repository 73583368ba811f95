/**
 * Drives the file store alone through what the relay does per message (enqueue a 10 KB body, claim, read the body,
 * append the outcome's evidence record, record the result), with 8 messages in flight, so its system calls can be
 * counted without TLS, SMTP or logging around them:
 *
 *   strace -f -yy -o /tmp/store-calls npx tsx bench/file-store-calls.ts 300
 *
 * The calls between the two "MARK" lines it writes to stderr are the measured messages' (the evidence log's first
 * write, which creates its folders, comes before). Keep the count small enough that the run under strace stays below
 * the spool's periodic full rescan (60 s), or that rescan is counted too. Without strace it prints the process's CPU
 * time per message between the marks.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { silentLogger } from '../src/log/logger';
import { FileStore } from '../src/store/file/file-store';
import type { EvidenceRecordInput, JobResult } from '../src/store/types';

const MESSAGES = Number(process.argv[2] ?? 300);
const IN_FLIGHT = 8;
const BODY = Buffer.alloc(10_240, 'a');

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-store-calls-'));
  const store = new FileStore({ path: path.join(dir, 'queue'), keepFinished: 3_600_000, logger: silentLogger() });
  try {
    await store.open();
    await store.appendEvidence([{ kind: 'admin-action', at: Date.now(), queueId: null, messageId: null, recipient: null, sender: null, actor: 'bench', data: {} }]);
    process.stderr.write(`MARK start ${Date.now()}\n`);
    const cpu = process.cpuUsage();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < MESSAGES) {
        const n = next++;
        const messageId = `<m${n}@bench.test>`;
        const message = { from: 'sender@bench.test', recipients: [{ address: `r${n % 50}@bench-${n % 4}.test` }], params: {}, client: { ip: '127.0.0.1', listener: 'bench' }, receivedAt: Date.now() };
        await store.enqueue(message, Readable.from([BODY]), { messageId });
        for (const claimed of await store.claimDue('bench', 1, 60_000)) {
          for await (const chunk of await store.openBody(claimed.message.id)) void chunk;
          const at = Date.now();
          const result: JobResult = {
            recipients: claimed.job.recipients.map((r) => ({ address: r.address, outcome: 'delivered', evidence: { at, outcome: 'delivered', reason: '250 ok' } })),
          };
          const records: EvidenceRecordInput[] = result.recipients.map((r) => ({
            kind: 'recipient-outcome',
            at,
            queueId: claimed.message.id,
            messageId,
            recipient: r.address,
            sender: message.from,
            actor: 'relay',
            data: {},
          }));
          await store.appendEvidence(records);
          await store.completeJob(claimed.job.id, 'bench', result);
        }
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    const used = process.cpuUsage(cpu);
    process.stderr.write(`MARK end ${Date.now()}\n`);
    // The main thread and libuv's pool together (the kernel part is most of the file-system work).
    process.stdout.write(`${MESSAGES} messages: ${((used.user + used.system) / 1000 / MESSAGES).toFixed(3)} CPU-ms per message, ${(used.system / 1000 / MESSAGES).toFixed(3)} of it kernel\n`);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
