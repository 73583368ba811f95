/**
 * An admin command in its own process beside a running relay: opens the LMDB store on the same spool, applies
 * one action per argument (`hold:<id>`, `release:<id>`, `retry:<id>`, `delete:<id>`, `enqueue:<recipient>`, which
 * prints the new message's id), closes and exits.
 */
import { Readable } from 'node:stream';
import { silentLogger } from '../../../src/log/logger';
import { LmdbStore } from '../../../src/store/lmdb/lmdb-store';

async function main(): Promise<void> {
  const [dir, ...actions] = process.argv.slice(2);
  const store = new LmdbStore({ path: dir!, keepFinished: 86_400_000, logger: silentLogger() });
  await store.open();
  for (const action of actions) {
    const [verb, id] = action.split(':') as [string, string];
    if (verb === 'hold') await store.hold(id);
    else if (verb === 'release') await store.release(id);
    else if (verb === 'retry') await store.retryNow(id);
    else if (verb === 'delete') await store.deleteMessage(id);
    else if (verb === 'enqueue') {
      const message = {
        from: 'reports@relay.test',
        recipients: [{ address: id }],
        params: { bodyType: '8BITMIME' as const },
        client: { ip: '127.0.0.1', helo: 'cli', listener: 'cli' },
        receivedAt: Date.now(),
      };
      process.stdout.write(`${(await store.enqueue(message, Readable.from([Buffer.from('Subject: report\r\n\r\nqueued by the CLI\r\n')]))).id}\n`);
    } else throw new Error(`unknown action ${verb}`);
  }
  await store.close();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
