import { promises as fs, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import nodemailer from 'nodemailer';
import { parse, stringify } from 'yaml';
import { startRedis, type RedisHandle } from '../support/redis-server';
import { relayFixture, runCli, startRelayProcess, type RelayFixture, type RelayProcess } from '../support/relay-process';
import { standardScenarios, startWorld, type World } from '../support/world';
import { until } from '../support/wait';

/**
 * Hand-damaged queue entries in a real relay's store (both backends): a record missing a field, a job missing
 * its recipients, an unparsable job key, a truncated body and a body changed after enqueue. The relay must
 * deliver every other message once, never deliver a damaged one (nothing incomplete at the MX: no "." after a
 * bad body), quarantine each damaged one once, and show it to `sealgate queue list --quarantined`.
 */

const HEALTHY = 6;

function jsonLines(text: string): Array<Record<string, unknown>> {
  return text.split('\n').flatMap((line) => {
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

/** About `size` bytes of text in 76-character lines. */
function lines(char: string, size: number): string {
  return `${char.repeat(76)}\r\n`.repeat(Math.ceil(size / 78));
}
const BIG = 600 * 1024;

describe.each(['file', 'redis'] as const)('damaged store entries (%s store)', (backend) => {
  let world: World;
  let redis: RedisHandle | undefined;
  let fixture: RelayFixture;
  let env: NodeJS.ProcessEnv;
  let relay: RelayProcess | undefined;
  const prefix = `damage-${process.pid}-${backend}`;

  beforeAll(async () => {
    world = await startWorld(standardScenarios());
    redis = backend === 'redis' ? await startRedis() : undefined;
    env = redis ? { SEALGATE_REDIS_URL: redis.url } : {};
    fixture = relayFixture({
      ...world.relayConfig(),
      queue: { backend, path: 'queue', leaseTime: '2s', redis: { prefix } },
      delivery: { enabled: false, retrySchedule: ['1s'], pollInterval: '200ms' },
    });
  });

  afterAll(async () => {
    await relay?.stop('SIGKILL');
    await redis?.stop();
    await world?.stop();
    fixture?.remove();
  });

  function setDelivery(enabled: boolean): void {
    const config = parse(readFileSync(fixture.configFile, 'utf8')) as { delivery: { enabled: boolean } };
    config.delivery.enabled = enabled;
    writeFileSync(fixture.configFile, stringify(config));
  }

  async function submit(port: number, tag: string, body: string): Promise<string> {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port, requireTLS: true, tls: { rejectUnauthorized: false } });
    try {
      const info = await transport.sendMail({
        envelope: { from: 'clinic@sender.test', to: [`patient-${tag}@tls13.test`] },
        raw: `From: clinic@sender.test\r\nTo: patient@tls13.test\r\nMessage-ID: <${tag}@sender.test>\r\nSubject: damage\r\n\r\n${body}\r\n`,
      });
      return /queued as (\S+)/.exec(info.response)![1]!;
    } finally {
      transport.close();
    }
  }

  async function withRedis<T>(task: (client: Redis) => Promise<T>): Promise<T> {
    const client = new Redis(redis!.url);
    try {
      return await task(client);
    } finally {
      client.disconnect();
    }
  }

  async function editJson(key: string, change: (record: Record<string, unknown>) => void): Promise<void> {
    await withRedis(async (client) => {
      const record = JSON.parse((await client.get(key))!) as Record<string, unknown>;
      change(record);
      await client.set(key, JSON.stringify(record));
    });
  }

  async function editMeta(id: string, change: (record: Record<string, unknown>) => void): Promise<void> {
    const file = path.join(fixture.queuePath, 'meta', `${id}.json`);
    const record = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>;
    change(record);
    await fs.writeFile(file, JSON.stringify(record));
  }

  test('the other messages deliver once; each damaged one is quarantined once, never delivered, and listed', async () => {
    relay = await startRelayProcess(fixture.configFile, env);
    const port = relay.ports.smarthost!;
    const healthy: string[] = [];
    for (let i = 0; i < HEALTHY; i++) healthy.push(await submit(port, `healthy-${i}`, `healthy body ${i}`));
    const damaged = {
      noField: await submit(port, 'no-field', 'a record missing a field'),
      noRecipients: await submit(port, 'no-recipients', 'a job missing its recipients'),
      unparsable: await submit(port, 'unparsable', 'a job key that is not JSON'),
      truncated: await submit(port, 'truncated', lines('x', 4096)),
      changed: await submit(port, 'changed', lines('y', BIG)),
    };
    await relay.stop();
    relay = undefined;

    const job = (id: string) => `${id}/tls13.test`;
    if (backend === 'redis') {
      // What the probes did with redis-cli: the message key without its job list, a job without recipients,
      // a job key that is not JSON, a body cut in half, one byte of a body changed.
      await editJson(`${prefix}:msg:${damaged.noField}`, (m) => delete m.jobIds);
      await editJson(`${prefix}:job:${job(damaged.noRecipients)}`, (j) => delete j.recipients);
      await withRedis((c) => c.set(`${prefix}:job:${job(damaged.unparsable)}`, '{"id": "cut short'));
      await withRedis(async (c) => c.set(`${prefix}:body:${damaged.truncated}`, (await c.getBuffer(`${prefix}:body:${damaged.truncated}`))!.subarray(0, 2048)));
      await withRedis((c) => c.setrange(`${prefix}:body:${damaged.changed}`, BIG - 100, 'Z'));
    } else {
      await editMeta(damaged.noField, (m) => delete m.size);
      await editMeta(damaged.noRecipients, (m) => delete (m.jobs as Array<Record<string, unknown>>)[0]!.recipients);
      await fs.writeFile(path.join(fixture.queuePath, 'meta', `${damaged.unparsable}.json`), '{"id": "cut short');
      const bodies = path.join(fixture.queuePath, 'bodies');
      await fs.truncate(path.join(bodies, damaged.truncated), 2048);
      const handle = await fs.open(path.join(bodies, damaged.changed), 'r+');
      await handle.write(Buffer.from('Z'), 0, 1, BIG - 100);
      await handle.close();
    }

    // The CLI sees the healthy messages while the damage is still in place (it never fails on a bad entry).
    // With no relay running, the CLI may set the damage aside itself (logged on its stderr).
    const listing = await runCli(['--config', fixture.configFile, 'queue', 'list', '--json'], { env });
    expect(listing.code).toBe(0);
    const cliLines = jsonLines(listing.stderr);
    for (const id of healthy) expect(listing.stdout).toContain(id);

    setDelivery(true);
    relay = await startRelayProcess(fixture.configFile, env);
    const mx = world.mx('mx1.tls13.test');
    const received = (tag: string) => mx.received.filter((m) => m.raw.includes(`<${tag}@sender.test>`)).length;
    await until('every healthy message to arrive', () => (healthy.every((_id, i) => received(`healthy-${i}`) >= 1) ? true : undefined), 60_000);
    const damagedIds = Object.values(damaged);
    await until(
      'every damaged entry to be quarantined',
      async () => {
        const out = await runCli(['--config', fixture.configFile, 'queue', 'list', '--quarantined', '--json'], { env });
        const ids = (JSON.parse(out.stdout || '[]') as Array<{ id: string }>).map((e) => e.id);
        return damagedIds.every((id) => ids.includes(id)) ? ids : undefined;
      },
      60_000,
      500,
    );
    // Several lease periods more: nothing is delivered again.
    await new Promise((resolve) => setTimeout(resolve, 6_000));

    for (let i = 0; i < HEALTHY; i++) expect(received(`healthy-${i}`)).toBe(1);
    // Nothing damaged reached the MX as a message: the changed body was streamed but never ended with ".".
    for (const tag of ['no-field', 'no-recipients', 'unparsable', 'truncated', 'changed']) expect(received(tag)).toBe(0);
    const quarantinedLines = [...cliLines, ...relay.logs].filter((l) => l.event === 'quarantined');
    for (const id of damagedIds) expect(quarantinedLines.filter((l) => l.id === id)).toHaveLength(1);
    expect(relay.logs.filter((l) => l.event === 'complete-failed' || l.event === 'claim-failed')).toEqual([]);
    // No content in the quarantine lines: ids, kinds and reasons only.
    expect(JSON.stringify(quarantinedLines)).not.toMatch(/patient|clinic@sender|healthy body/);
    const byId = Object.fromEntries(quarantinedLines.map((l) => [l.id as string, l.code as string]));
    expect(byId[damaged.truncated]).toBe('body-size');
    expect(byId[damaged.changed]).toBe('body-checksum');
    expect(byId[damaged.unparsable]).toBe('invalid-json');

    const list = await runCli(['--config', fixture.configFile, 'queue', 'list', '--quarantined'], { env });
    expect(list.code).toBe(0);
    for (const id of damagedIds) expect(list.stdout).toContain(id);
    const stats = await runCli(['--config', fixture.configFile, 'stats', '--json'], { env });
    expect((JSON.parse(stats.stdout) as { quarantined: number }).quarantined).toBe(damagedIds.length);
    const metrics = await runCli(['--config', fixture.configFile, 'queue', 'list', '--json'], { env });
    expect(metrics.code).toBe(0);

    const purge = await runCli(['--config', fixture.configFile, 'queue', 'purge-quarantine', '--json'], { env });
    expect(purge.code).toBe(0);
    expect((JSON.parse(purge.stdout) as { purged: Array<{ id: string }> }).purged.map((e) => e.id).sort()).toEqual([...damagedIds].sort());
    const after = await runCli(['--config', fixture.configFile, 'queue', 'list', '--quarantined', '--json'], { env });
    expect(JSON.parse(after.stdout)).toEqual([]);
  }, 180_000);
});
