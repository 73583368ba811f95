/**
 * Drives the file store alone through what the relay does per message (the store-designs driver: enqueue a 10 KB
 * body, claim, read the body, append the outcome's evidence record, record the result), with 8 messages in flight,
 * so its system calls can be counted without TLS, SMTP or logging around them:
 *
 *   strace -f -yy -o /tmp/store-calls npx tsx bench/file-store-calls.ts 300
 *
 * The calls between the two "MARK" lines it writes to stderr are the measured messages' (the store's open and the
 * evidence log's first write, which create their folders, come before). Keep the count small enough that the run
 * under strace stays below the spool's periodic full rescan (60 s), or that rescan is counted too. Without strace
 * it prints the process's CPU time per message between the marks.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createDesign } from './store-designs/designs';
import { drive } from './store-designs/driver';

const MESSAGES = Number(process.argv[2] ?? 300);

async function main(): Promise<void> {
  const design = createDesign('file-store', mkdtempSync(path.join(os.tmpdir(), 'sealgate-store-calls-')));
  try {
    const store = await design.open();
    try {
      await store.appendEvidence([{ kind: 'admin-action', at: Date.now(), queueId: null, messageId: null, recipient: null, sender: null, actor: 'bench', data: {} }]);
      process.stderr.write(`MARK start ${Date.now()}\n`);
      const { cpu } = await drive(store, { messages: MESSAGES, connections: 8, size: 10_240 });
      process.stderr.write(`MARK end ${Date.now()}\n`);
      // The main thread and libuv's pool together (the kernel part is most of the file-system work).
      process.stdout.write(`${MESSAGES} messages: ${((cpu.user + cpu.system) / 1000 / MESSAGES).toFixed(3)} CPU-ms per message, ${(cpu.system / 1000 / MESSAGES).toFixed(3)} of it kernel\n`);
    } finally {
      await store.close();
    }
  } finally {
    await design.dispose();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
