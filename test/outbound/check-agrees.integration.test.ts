import nodemailer from 'nodemailer';
import { loadConfig } from '../../src/config/load';
import { silentLogger } from '../../src/log/logger';
import { checkDomain, type CheckReport, type Verdict } from '../../src/outbound/check';
import { createPolicyRuntime, memoryPolicyCache } from '../../src/policy';
import { createStore } from '../../src/store';
import type { Evidence, JobRecord, RecipientOutcome, Store } from '../../src/store/types';
import { relayFixture, startRelayProcess, type RelayFixture, type RelayProcess } from '../support/relay-process';
import { standardScenarios, startWorld, type World } from '../support/world';

/**
 * `sealgate check` and real delivery apply one outcome rule, so they must agree: for every scenario
 * domain of the test world, check's verdict and code are the outcome and reason the relay records
 * when it delivers to that domain (for a deferral, its first attempt; otherwise the final outcome).
 */

const OUTCOME_OF: Record<Verdict, RecipientOutcome> = { deliver: 'delivered', divert: 'diverted', defer: 'deferred', bounce: 'bounced' };

// slow.test only delays the reply to DATA (crash tests): the same verdict as tls13.test, ten seconds later.
const SKIP = new Set(['slow.test']);

describe('sealgate check agrees with delivery on every scenario of the test world', () => {
  let world: World;
  let fixture: RelayFixture;
  let relay: RelayProcess;
  let store: Store;

  beforeAll(async () => {
    world = await startWorld({
      ...standardScenarios(),
      // Two MX hosts failing differently: no shared cause.
      'mixed.test': {
        mx: [
          { host: 'mx1.mixed.test', tls: 'none', preference: 10 },
          { host: 'mx2.mixed.test', tls: 'tls11', preference: 20 },
        ],
      },
    });
    const relayConfig = world.relayConfig();
    fixture = relayFixture({
      ...relayConfig,
      // Short, for the dnstimeout scenario; two tries so a slow answer on a busy machine is not taken for a timeout.
      dns: { ...relayConfig.dns, timeout: '1s', tries: 2 },
      // Certificate problems that the verify level turns into diversions with their own codes.
      domains: { 'expired.test': { level: 'verify' }, 'wrongname.test': { level: 'verify' } },
      delivery: { retrySchedule: ['1s'], pollInterval: '200ms' },
    });
    relay = await startRelayProcess(fixture.configFile);
    store = createStore(loadConfig(fixture.configFile, {}).config, silentLogger());
    await store.open();
  }, 60_000);

  afterAll(async () => {
    await store?.close();
    await relay?.stop();
    await world?.stop();
    fixture?.remove();
  });

  async function lastEvidenceOf(id: string, domain: string, settled: (job: JobRecord) => boolean): Promise<Evidence> {
    const deadline = Date.now() + 45_000;
    for (;;) {
      const job = (await store.getMessage(id))?.jobs.find((j) => j.domain === domain);
      if (job && settled(job)) return job.recipients[0]!.history.at(-1)!;
      if (Date.now() > deadline) throw new Error(`${domain}: no outcome in time (${job?.state ?? 'no job'})`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  test('verdict and code match the recorded outcome and reason', async () => {
    const scenarioDomains = [...Object.keys(standardScenarios()), 'mixed.test'].filter((d) => !SKIP.has(d));

    const { config } = loadConfig(fixture.configFile, {});
    const runtime = createPolicyRuntime(config, { cache: memoryPolicyCache() });
    const reports = new Map<string, CheckReport>();
    for (const domain of scenarioDomains) reports.set(domain, await checkDomain(domain, runtime, { diagnose: false }));

    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: relay.ports.smarthost!, secure: false, requireTLS: true, tls: { rejectUnauthorized: false } });
    const info = await transport.sendMail({
      envelope: { from: 'clinic@sender.test', to: scenarioDomains.map((d) => `patient@${d}`) },
      raw: 'From: Clinic <clinic@sender.test>\r\nTo: undisclosed-recipients:;\r\nSubject: agreement\r\nMessage-ID: <agreement@sender.test>\r\n\r\nResults\r\n',
    });
    transport.close();
    const id = /queued as (\S+)/.exec(info.response)![1]!;

    const seen: Record<string, [string, string]> = {};
    const predicted: Record<string, [string, string]> = {};
    for (const domain of scenarioDomains) {
      const report = reports.get(domain)!;
      const deferral = report.verdict === 'defer';
      const evidence = await lastEvidenceOf(id, domain, (job) => (deferral ? job.recipients[0]!.history.length > 0 : ['delivered', 'diverted', 'bounced'].includes(job.state)));
      // A check never sends mail, so its code for a deliverable domain is compliant-mx, not delivered.
      predicted[domain] = [OUTCOME_OF[report.verdict], report.verdict === 'deliver' ? 'delivered' : report.code];
      seen[domain] = [evidence.outcome, evidence.reason];
    }
    expect(seen).toEqual(predicted);
    // The scenarios cover every verdict and the shared-cause codes.
    const codes = new Set(Object.values(predicted).map(([, code]) => code));
    expect(new Set(Object.values(predicted).map(([o]) => o))).toEqual(new Set(['delivered', 'diverted', 'deferred', 'bounced']));
    for (const code of ['starttls-not-offered', 'tls-handshake-failed', 'certificate-untrusted', 'certificate-name-mismatch', 'no-compliant-mx']) expect(codes).toContain(code);
  }, 120_000);
});
