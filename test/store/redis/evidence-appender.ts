/*
 * A relay's evidence writer in its own process, for the many-relays test: opens a RedisStore on the URL and prefix
 * given and appends `count` records in batches of 1 to 4, tagged with `name`. Run with `node --require tsx/cjs`.
 * Usage: evidence-appender.ts <url> <prefix> <name> <count>
 */
import { silentLogger } from '../../../src/log/logger';
import { RedisStore } from '../../../src/store/redis/redis-store';

async function main(): Promise<void> {
  const [url, prefix, name, countText] = process.argv.slice(2);
  const count = Number(countText);
  if (!url || !prefix || !name || !Number.isSafeInteger(count)) throw new Error('usage: evidence-appender.ts <url> <prefix> <name> <count>');
  const store = new RedisStore({ url, prefix, keepFinished: 86_400_000, onWeakDurability: 'warn', logger: silentLogger() });
  await store.open();
  let sent = 0;
  while (sent < count) {
    const size = Math.min(count - sent, 1 + (sent % 4));
    const inputs = Array.from({ length: size }, (_, i) => ({
      kind: 'recipient-outcome' as const,
      at: Date.now(),
      queueId: `${name}-${sent + i}`,
      messageId: null,
      recipient: `r${sent + i}@${name}.test`,
      sender: 'app@clinic.test',
      actor: 'relay',
      data: { outcome: 'delivered', writer: name },
    }));
    await store.appendEvidence(inputs);
    sent += size;
  }
  await store.close();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
