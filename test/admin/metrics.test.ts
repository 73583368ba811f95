import nodemailer from 'nodemailer';
import { createMetrics, mtaStsLookupResult, topDomains } from '../../src/admin/metrics';
import { loadConfig } from '../../src/config/load';
import { silentLogger } from '../../src/log/logger';
import type { MtaStsResult } from '../../src/policy/mta-sts';
import { startRelay, type Relay } from '../../src/relay';
import type { ClaimedJob, JobResult, MessageRecord, StoreCounts, WaitingJobs } from '../../src/store/types';
import type { ConfigStatus } from '../../src/config/live';
import { VERSION } from '../../src/config/version';
import { relayFixture, type RelayFixture } from '../support/relay-process';
import { RawSmtpClient } from '../support/smtp-client';
import { standardScenarios, startWorld, type World } from '../support/world';
import { sample, total } from '../support/prometheus';

function counts(jobs: Partial<StoreCounts['jobs']>, fallback: Partial<StoreCounts['fallback']> = {}): StoreCounts {
  return {
    jobs: { queued: 0, deferred: 0, held: 0, leased: 0, delivered: 0, diverted: 0, bounced: 0, ...jobs },
    fallback: { ready: 0, claimed: 0, acked: 0, ...fallback },
    messages: 1,
    quarantined: 0,
  };
}

function claimed(receivedAt: number): ClaimedJob {
  const message = { id: 'q1', from: 'a@sender.test', size: 10, receivedAt, params: {}, client: { ip: '127.0.0.1', listener: 'smarthost' }, headers: {} };
  return {
    message,
    job: { id: 'q1/x.test', messageId: 'q1', domain: 'x.test', state: 'leased', recipients: [], dueAt: 0, attempts: 0, createdAt: receivedAt, updatedAt: receivedAt },
  };
}

const NOTHING_WAITING: WaitingJobs = { total: 0, oldestArrival: null, byDomain: {} };

function liveConfig(status: Partial<ConfigStatus> = {}, topDomains = 10) {
  const live = {
    status: (): ConfigStatus => ({ file: '/etc/sealgate.yaml', digest: 'aaaa1111', loadedAt: '2026-11-29T10:00:00.000Z', reloads: 0, failedReloads: 0, lastReloadAt: null, ...status }),
    current: { admin: { metricsTopDomains: topDomains } },
  };
  return live;
}

const STS_BASE: MtaStsResult = { record: null, policy: null, policyId: null, source: null, error: null, errorType: null, temporary: false };

describe('metrics module', () => {
  test('process metrics and every Sealgate instrument are exposed, in a registry of their own', async () => {
    const a = createMetrics();
    const b = createMetrics();
    a.messagesAccepted.inc({ listener: 'submission' });
    const text = (await a.render()).body;
    expect(sample(text, 'process_cpu_user_seconds_total')).toBeGreaterThanOrEqual(0);
    expect(sample(text, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(sample(text, 'sealgate_messages_accepted_total', { listener: 'submission' })).toBe(1);
    for (const name of [
      'sealgate_messages_refused_total',
      'sealgate_recipients_total',
      'sealgate_delivery_latency_seconds',
      'sealgate_outbound_tls_sessions_total',
      'sealgate_inbound_tls_sessions_total',
      'sealgate_mta_sts_lookups_total',
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(sample((await b.render()).body, 'sealgate_messages_accepted_total', { listener: 'submission' })).toBeUndefined();
    expect((await a.render()).contentType).toMatch(/^text\/plain/);
  });

  test('a settled attempt counts recipient outcomes, final-outcome latency and each MX session TLS', async () => {
    let clock = 1_000_000;
    const metrics = createMetrics({ defaultMetrics: false, now: () => clock });
    clock += 90_000;
    const tls = { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', group: 'x25519' };
    const mxAttempts = [
      {
        mx: 'mx1.x.test',
        ip: '127.0.0.10',
        at: clock,
        class: 'non-compliant',
        reason: 'tls',
        starttls: true,
        tls: { protocol: 'TLSv1.1', cipher: 'ECDHE-RSA-AES128-SHA', group: null },
        certificate: null,
        reply: null,
      },
      { mx: 'mx2.x.test', ip: '127.0.0.11', at: clock, class: 'ok', reason: 'ok', starttls: true, tls, certificate: null, reply: null },
    ];
    const result: JobResult = {
      recipients: [
        { address: 'a@x.test', outcome: 'delivered', evidence: { at: clock, outcome: 'delivered', reason: 'delivered', mxAttempts } },
        { address: 'b@x.test', outcome: 'deferred', evidence: { at: clock, outcome: 'deferred', reason: 'rcpt-450', mxAttempts } },
        { address: 'c@x.test', outcome: 'diverted', evidence: { at: clock, outcome: 'diverted', reason: 'no-compliant-mx', mxAttempts } },
      ],
      retryAt: clock,
    };
    metrics.recordSettled(claimed(1_000_000), result);
    const text = (await metrics.render()).body;
    expect(sample(text, 'sealgate_recipients_total', { outcome: 'delivered', reason: 'delivered' })).toBe(1);
    expect(sample(text, 'sealgate_recipients_total', { outcome: 'deferred', reason: 'rcpt-450' })).toBe(1);
    expect(sample(text, 'sealgate_recipients_total', { outcome: 'diverted', reason: 'no-compliant-mx' })).toBe(1);
    // Deferred is not final: only two latency observations, both 90 s.
    expect(sample(text, 'sealgate_delivery_latency_seconds_count', { outcome: 'delivered' })).toBe(1);
    expect(sample(text, 'sealgate_delivery_latency_seconds_sum', { outcome: 'diverted' })).toBe(90);
    expect(sample(text, 'sealgate_delivery_latency_seconds_bucket', { outcome: 'delivered', le: '60' })).toBe(0);
    expect(sample(text, 'sealgate_delivery_latency_seconds_bucket', { outcome: 'delivered', le: '300' })).toBe(1);
    expect(sample(text, 'sealgate_delivery_latency_seconds_count', { outcome: 'deferred' })).toBeUndefined();
    // The MX list is shared by the attempt's recipients: each session counted once.
    expect(sample(text, 'sealgate_outbound_tls_sessions_total', { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' })).toBe(1);
    expect(sample(text, 'sealgate_outbound_tls_sessions_total', { protocol: 'TLSv1.1', cipher: 'ECDHE-RSA-AES128-SHA' })).toBe(1);
  });

  test('queue and fallback depth come from store.counts(), cached briefly; a failing store reads as store_up 0', async () => {
    let clock = 0;
    let calls = 0;
    let answer: StoreCounts | Error = counts({ queued: 3, deferred: 2, leased: 1 }, { ready: 4 });
    const metrics = createMetrics({ defaultMetrics: false, now: () => clock });
    metrics.watchStore({
      counts: async () => {
        calls++;
        if (answer instanceof Error) throw answer;
        return answer;
      },
      waitingJobs: async () => NOTHING_WAITING,
    });
    let text = (await metrics.render()).body;
    expect(sample(text, 'sealgate_queue_jobs', { state: 'queued' })).toBe(3);
    expect(sample(text, 'sealgate_queue_jobs', { state: 'deferred' })).toBe(2);
    expect(sample(text, 'sealgate_queue_jobs', { state: 'held' })).toBe(0);
    expect(sample(text, 'sealgate_fallback_items', { state: 'ready' })).toBe(4);
    expect(sample(text, 'sealgate_store_up')).toBe(1);
    expect(calls).toBe(1);

    answer = counts({ queued: 7 });
    clock += 500;
    text = (await metrics.render()).body;
    expect(sample(text, 'sealgate_queue_jobs', { state: 'queued' })).toBe(3);
    expect(calls).toBe(1);

    clock += 5_000;
    text = (await metrics.render()).body;
    expect(sample(text, 'sealgate_queue_jobs', { state: 'queued' })).toBe(7);
    expect(calls).toBe(2);

    answer = new Error('Redis queue at 127.0.0.1:1 is unreachable');
    clock += 5_000;
    text = (await metrics.render()).body;
    expect(sample(text, 'sealgate_store_up')).toBe(0);
  });

  test('quarantined entries: a counter by kind and cause from the store observer, and a gauge of what is kept', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    metrics.watchStore({ counts: async () => ({ ...counts({}), quarantined: 3 }), waitingJobs: async () => NOTHING_WAITING });
    metrics.recordQuarantined({ id: 'q1', kind: 'result', code: 'result-unrecorded', reason: 'result could not be recorded', at: 1 });
    metrics.recordQuarantined({ id: 'q2', kind: 'body', code: 'body-checksum', reason: 'changed', at: 2 });
    metrics.recordQuarantined({ id: 'q3', kind: 'body', code: 'body-checksum', reason: 'changed', at: 3 });
    const text = (await metrics.render()).body;
    expect(sample(text, 'sealgate_quarantined_total', { kind: 'result', code: 'result-unrecorded' })).toBe(1);
    expect(sample(text, 'sealgate_quarantined_total', { kind: 'body', code: 'body-checksum' })).toBe(2);
    expect(sample(text, 'sealgate_quarantined_entries')).toBe(3);
    // Reasons and ids never become labels.
    expect(text).not.toMatch(/q1|could not be recorded/);
  });

  test('oldest waiting job age and per-domain depth come from store.waitingJobs(), one read per scrape, top N domains plus "other"', async () => {
    let clock = 1_000_000;
    let calls = 0;
    let waiting: WaitingJobs = { total: 9, oldestArrival: clock - 90_000, byDomain: { 'a.test': 4, 'b.test': 3, 'c.test': 1, 'd.test': 1 } };
    const metrics = createMetrics({ defaultMetrics: false, now: () => clock });
    metrics.watchStore({
      counts: async () => counts({}),
      waitingJobs: async () => {
        calls++;
        return waiting;
      },
    });
    const live = liveConfig({}, 2);
    metrics.watchConfig(live);
    let text = (await metrics.render()).body;
    expect(calls).toBe(1);
    expect(sample(text, 'sealgate_queue_oldest_age_seconds')).toBe(90);
    expect(sample(text, 'sealgate_queue_domain_jobs', { domain: 'a.test' })).toBe(4);
    expect(sample(text, 'sealgate_queue_domain_jobs', { domain: 'b.test' })).toBe(3);
    expect(sample(text, 'sealgate_queue_domain_jobs', { domain: 'other' })).toBe(2);
    expect(sample(text, 'sealgate_queue_domain_jobs', { domain: 'c.test' })).toBeUndefined();

    // A domain whose queue drained loses its series; the top N follows the running config.
    waiting = { total: 2, oldestArrival: null, byDomain: { 'c.test': 2 } };
    live.current.admin.metricsTopDomains = 5;
    clock += 5_000;
    text = (await metrics.render()).body;
    expect(calls).toBe(2);
    expect(sample(text, 'sealgate_queue_domain_jobs', { domain: 'c.test' })).toBe(2);
    expect(sample(text, 'sealgate_queue_domain_jobs', { domain: 'a.test' })).toBeUndefined();
    expect(sample(text, 'sealgate_queue_domain_jobs', { domain: 'other' })).toBeUndefined();
    expect(sample(text, 'sealgate_queue_oldest_age_seconds')).toBe(0);
  });

  test('topDomains keeps the N largest (ties by name) and sums the rest, a domain named "other" included, under "other"', () => {
    expect(topDomains({ 'b.test': 2, 'a.test': 2, 'c.test': 5, other: 1 }, 2)).toEqual({ 'c.test': 5, 'a.test': 2, other: 3 });
    expect(topDomains({ 'a.test': 1 }, 0)).toEqual({ other: 1 });
    expect(topDomains({}, 3)).toEqual({});
    const many = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`d${i}.test`, i + 1]));
    expect(Object.keys(topDomains(many, 10))).toHaveLength(11);
  });

  test('build info, open inbound connections per listener, and config reloads from the running config status', async () => {
    const metrics = createMetrics({ defaultMetrics: false, nodeVersion: 'v24.0.0' });
    let open: Record<string, number> = { submission: 0, smarthost: 0 };
    metrics.watchInbound({ connections: () => open });
    let status: Partial<ConfigStatus> = {};
    metrics.watchConfig({ status: () => liveConfig(status).status(), current: { admin: { metricsTopDomains: 10 } } });
    let text = (await metrics.render()).body;
    expect(sample(text, 'sealgate_build_info', { version: VERSION, node: 'v24.0.0' })).toBe(1);
    expect(sample(text, 'sealgate_inbound_connections', { listener: 'submission' })).toBe(0);
    expect(sample(text, 'sealgate_config_reloads_total')).toBe(0);
    expect(sample(text, 'sealgate_config_reload_failures_total')).toBe(0);
    expect(sample(text, 'sealgate_config_last_reload_timestamp_seconds')).toBe(0);
    expect(sample(text, 'sealgate_config_loaded_timestamp_seconds')).toBe(Date.parse('2026-11-29T10:00:00.000Z') / 1000);
    expect(sample(text, 'sealgate_config_info', { digest: 'aaaa1111' })).toBe(1);

    open = { submission: 3, smarthost: 1 };
    status = { digest: 'bbbb2222', reloads: 2, failedReloads: 1, lastReloadAt: '2026-11-29T11:00:00.000Z' };
    text = (await metrics.render()).body;
    expect(sample(text, 'sealgate_inbound_connections', { listener: 'submission' })).toBe(3);
    expect(sample(text, 'sealgate_inbound_connections', { listener: 'smarthost' })).toBe(1);
    expect(sample(text, 'sealgate_config_reloads_total')).toBe(2);
    expect(sample(text, 'sealgate_config_reload_failures_total')).toBe(1);
    expect(sample(text, 'sealgate_config_last_reload_timestamp_seconds')).toBe(Date.parse('2026-11-29T11:00:00.000Z') / 1000);
    // One digest series: the old one is gone.
    expect(sample(text, 'sealgate_config_info', { digest: 'bbbb2222' })).toBe(1);
    expect(sample(text, 'sealgate_config_info', { digest: 'aaaa1111' })).toBeUndefined();
  });

  test('MTA-STS lookups are classified fetched, cached, failed or none', () => {
    const policy = { version: 'STSv1', mode: 'enforce', mx: ['*.x.test'], maxAge: 86400 } as unknown as MtaStsResult['policy'];
    expect(mtaStsLookupResult({ ...STS_BASE, policy, policyId: '1', source: 'fetched' })).toBe('fetched');
    expect(mtaStsLookupResult({ ...STS_BASE, policy, policyId: '1', source: 'cache' })).toBe('cached');
    expect(mtaStsLookupResult({ ...STS_BASE, policy, policyId: '1', source: 'cache', error: 'HTTP 404', errorType: 'sts-policy-fetch-error' })).toBe('failed');
    expect(mtaStsLookupResult({ ...STS_BASE, error: 'SERVFAIL', temporary: true })).toBe('failed');
    expect(mtaStsLookupResult(STS_BASE)).toBe('none');
  });
});

async function submit(port: number, recipients: string[], tag: string): Promise<string> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, requireTLS: true, tls: { rejectUnauthorized: false } });
  try {
    const raw = `From: <clinic@sender.test>\r\nTo: undisclosed-recipients:;\r\nSubject: metrics ${tag}\r\nMessage-ID: <${tag}@sender.test>\r\n\r\nbody\r\n`;
    const info = await transport.sendMail({ envelope: { from: 'clinic@sender.test', to: recipients }, raw });
    return /queued as (\S+)/.exec(info.response)![1]!;
  } finally {
    transport.close();
  }
}

async function waitForFinal(relay: Relay, id: string, timeoutMs: number): Promise<MessageRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const message = await relay.store.getMessage(id);
    if (message && message.jobs.every((j) => ['delivered', 'diverted', 'bounced'].includes(j.state))) return message;
    if (Date.now() > deadline) throw new Error(`not final in time: ${JSON.stringify(message?.jobs.map((j) => [j.domain, j.state]))}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('metrics of a running relay (in process, test world)', () => {
  let world: World;
  let fixture: RelayFixture;
  let relay: Relay;

  beforeAll(async () => {
    world = await startWorld(standardScenarios());
    fixture = relayFixture({ ...world.relayConfig(), admin: { enabled: false }, delivery: { retrySchedule: ['1s'], pollInterval: '200ms' } });
    relay = await startRelay(loadConfig(fixture.configFile, {}), silentLogger());
  });

  afterAll(async () => {
    await relay?.close();
    await world?.stop();
    fixture?.remove();
  });

  test('accepted, refused, delivered and diverted mail moves the counters', async () => {
    const port = (name: string) => relay.inbound.listeners.find((l) => l.name === name)!.port;
    expect((await relay.metrics.messagesAccepted.get()).values).toEqual([]);

    // Refused: MAIL on the auth-required implicit-TLS listener without AUTH.
    const client = await RawSmtpClient.connect(port('submissions'), { tls: { rejectUnauthorized: false } });
    await client.command('EHLO client.test');
    expect((await client.command('MAIL FROM:<clinic@sender.test>')).code).toBe(530);
    await client.command('QUIT');
    client.close();

    const id = await submit(port('smarthost'), ['patient@tls13.test', 'patient@tls11.test', 'patient@sts-enforce.test'], 'moves');
    const message = await waitForFinal(relay, id, 30_000);
    expect(message.jobs.map((j) => [j.domain, j.state]).sort()).toEqual([
      ['sts-enforce.test', 'delivered'],
      ['tls11.test', 'diverted'],
      ['tls13.test', 'delivered'],
    ]);

    // The store records a result just before the scheduler reports it: wait (bounded) for the last report.
    let text = '';
    for (let i = 0; i < 50; i++) {
      text = (await relay.metrics.render()).body;
      if (total(text, 'sealgate_recipients_total', {}) >= 3) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(sample(text, 'sealgate_messages_accepted_total', { listener: 'smarthost' })).toBe(1);
    expect(sample(text, 'sealgate_messages_refused_total', { reason: 'auth-required' })).toBe(1);
    expect(sample(text, 'sealgate_recipients_total', { outcome: 'delivered', reason: 'delivered' })).toBe(2);
    expect(total(text, 'sealgate_recipients_total', { outcome: 'diverted' })).toBe(1);
    expect(sample(text, 'sealgate_delivery_latency_seconds_count', { outcome: 'delivered' })).toBe(2);
    expect(sample(text, 'sealgate_outbound_tls_sessions_total', { protocol: 'TLSv1.3' })).toBeGreaterThanOrEqual(2);
    expect(sample(text, 'sealgate_inbound_tls_sessions_total', { protocol: 'TLSv1.3' })).toBeGreaterThanOrEqual(2);
    expect(sample(text, 'sealgate_mta_sts_lookups_total', { result: 'fetched' })).toBe(1);
    expect(sample(text, 'sealgate_mta_sts_lookups_total', { result: 'none' })).toBeGreaterThanOrEqual(2);
    expect(sample(text, 'sealgate_fallback_items', { state: 'ready' })).toBe(1);
    expect(sample(text, 'sealgate_store_up')).toBe(1);
    // Labels hold codes and TLS facts only, never addresses.
    expect(text).not.toContain('patient@');
  });
});
