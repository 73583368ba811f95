import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { loadConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import { silentLogger } from '../../src/log/logger';
import { TEST_CLOCK_ENV } from '../../src/report/runtime';
import { createStore } from '../../src/store';
import type { EvidenceRecord, Store } from '../../src/store/types';
import { relayFixture, startRelayProcess, type RelayFixture, type RelayProcess } from '../support/relay-process';
import { standardScenarios, startWorld, type World } from '../support/world';
import { until } from '../support/wait';

/**
 * reports.schedule in a real relay process against the test world: with the schedule's test clock a day ahead,
 * the relay writes "yesterday's" report at start, records it in the evidence log, and mails it to its staff over
 * compliant TLS only: the TLS 1.3 MX gets it, the TLS 1.0-only and no-STARTTLS MX get nothing, and nothing is
 * diverted to the portal (no fallback item).
 */

const DAY_MS = 86_400_000;

describe('scheduled reports', () => {
  let world: World;
  let fixture: RelayFixture;
  let relay: RelayProcess;
  let config: Config;
  let store: Store | undefined;
  // The schedule's clock: tomorrow 06:00 UTC, so the last complete day is today.
  const today = new Date().toISOString().slice(0, 10);
  const clock = new Date(Date.parse(`${today}T06:00:00Z`) + DAY_MS).toISOString();
  const officer = 'officer@tls13.test';
  const tls10 = 'audit@tls11.test';
  const plain = 'compliance@nostarttls.test';

  beforeAll(async () => {
    const all = standardScenarios();
    world = await startWorld({ 'tls13.test': all['tls13.test']!, 'tls11.test': all['tls11.test']!, 'nostarttls.test': all['nostarttls.test']! });
    fixture = relayFixture({
      ...world.relayConfig(),
      delivery: { retrySchedule: ['1s'], pollInterval: '200ms' },
      reports: { schedule: 'daily', formats: ['json', 'csv'], mailTo: [officer, tls10, plain] },
    });
    relay = await startRelayProcess(fixture.configFile, { [TEST_CLOCK_ENV]: clock });
    config = loadConfig(fixture.configFile, {}).config;
  }, 60_000);

  afterAll(async () => {
    await store?.close();
    await relay?.stop();
    await world?.stop();
    fixture?.remove();
  });

  it('writes the files, records them, and mails them over compliant TLS only', async () => {
    const names = [`sealgate-report-${today}_${today}.json`, `sealgate-report-${today}_${today}.csv`];
    await until('the report files', () => (names.every((n) => existsSync(path.join(config.reports.folder, n))) ? true : undefined), 20_000);
    expect(readdirSync(config.reports.folder).sort()).toEqual([...names].sort());
    const json = JSON.parse(readFileSync(path.join(config.reports.folder, names[0]!), 'utf8')) as { version: number; period: { from: string; to: string } };
    expect(json).toMatchObject({ version: 1, period: { from: `${today}T00:00:00.000Z` } });

    // The compliant recipient's MX receives it, over TLS 1.2 or later, with both files attached.
    const received = await until('the report at the TLS 1.3 MX', () => world.mx('mx1.tls13.test').received.find((m) => m.rcptTo.includes(officer)), 20_000);
    expect(received.mailFrom).toBe('reports@relay.test');
    expect(['TLSv1.2', 'TLSv1.3']).toContain(received.tls?.protocol);
    const parsed = await simpleParser(received.raw);
    expect(parsed.attachments.map((a) => a.filename)).toEqual(names);
    for (const a of parsed.attachments) expect(a.content.equals(readFileSync(path.join(config.reports.folder, a.filename!)))).toBe(true);

    // Tried again and again (1 s retries), the non-compliant recipients still have nothing and nothing was diverted.
    store = createStore(config, silentLogger());
    await store.open();
    const report = async () => (await store!.listMessages()).find((m) => m.from === 'reports@relay.test');
    const pendingTried = (m: Awaited<ReturnType<typeof report>>) => m!.jobs.filter((j) => j.domain !== 'tls13.test').every((j) => j.recipients.every((r) => r.history.length >= 2));
    const message = await until(
      'two attempts at each non-compliant recipient',
      async () => {
        const m = await report();
        return m && pendingTried(m) ? m : undefined;
      },
      30_000,
    );
    expect(world.mx('mx1.tls11.test').received).toEqual([]);
    expect(world.mx('mx1.nostarttls.test').received).toEqual([]);
    expect(await store.listFallback()).toEqual([]);
    expect(message.params).toEqual({ compliantOnly: { kind: 'report' } });
    const states = Object.fromEntries(message.jobs.flatMap((j) => j.recipients.map((r) => [r.address, r.state])));
    expect(states).toEqual({ [officer]: 'delivered', [tls10]: 'pending', [plain]: 'pending' });
    for (const job of message.jobs.filter((j) => j.domain !== 'tls13.test')) {
      expect(job.state).not.toBe('diverted');
      expect(job.recipients[0]!.history.map((h) => h.outcome)).not.toContain('diverted');
    }
    expect(relay.logs.filter((l) => l.event === 'report-mail-queued')).toHaveLength(1);

    // The report-generated record holds each file's size and SHA-256.
    const records: EvidenceRecord[] = [];
    for await (const r of store.queryEvidence({ kinds: ['report-generated'] })) records.push(r);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ actor: 'relay', data: { schedule: 'daily', formats: ['json', 'csv'] } });
    expect((records[0]!.data as { files: unknown[] }).files).toEqual(
      names.map((name) => {
        const content = readFileSync(path.join(config.reports.folder, name));
        return { name, format: name.endsWith('.json') ? 'json' : 'csv', size: content.length, sha256: createHash('sha256').update(content).digest('hex') };
      }),
    );
  }, 90_000);
});
