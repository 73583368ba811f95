import { Readable } from 'node:stream';
import { parseConfig } from '../../src/config/load';
import { silentLogger } from '../../src/log/logger';
import { DeliveryEngine, type DeliveryEngineDeps } from '../../src/outbound/engine';
import type { TlsSessionFacts as TlsSessionEvent } from '../../src/evidence/tls-session';
import type { Candidate, DeliveryPlan, PolicyRuntime } from '../../src/policy';
import { MxSessionError, type CandidateConnection, type MxConnector, type MxSession, type SessionJudgement } from '../../src/smtp-client';
import type { ClaimedJob, Store } from '../../src/store/types';
import { buildReport, createTlsRptRecorder, validateReport } from '../../src/tlsrpt';
import { memoryCounters } from '../tlsrpt/memory-counters';

/**
 * What the delivery engine reports to TLS-RPT counting, through a fake wire: one event per new connection
 * that reached a TLS decision, none for a pooled reuse, notices, routes or report mail; and what the
 * recorder then counts (transient failures left out).
 */

const DOMAIN = 'example.test';
const NOW = Date.parse('2026-11-29T12:00:00Z');
const DAY = '2026-11-29';

type Step = 'compliant' | 'expired-cert' | { error: 'non-compliant' | 'transient'; code: string };

function fakeSession(host: string, address: string, certError: string | null = null): MxSession {
  return {
    target: { host, address, port: 25, servername: host },
    connection: { destroyed: false },
    socket: { localAddress: '127.0.0.1' },
    starttlsAdvertised: true,
    ehlo: ['STARTTLS'],
    negotiated: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', group: 'X25519' },
    profileCheck: { compliant: true, problems: [] },
    certificate: { subject: `CN=${host}`, issuer: 'CN=CA', validFrom: null, validTo: null, fingerprint256: null, trusted: certError === null, nameMatch: true, error: certError },
  } as unknown as MxSession;
}

class Wire implements Partial<MxConnector> {
  connects = 0;
  constructor(private readonly script: Record<string, Step[]>) {}

  async connect(candidate: Pick<Candidate, 'host' | 'addresses'>): Promise<CandidateConnection> {
    this.connects++;
    const step = this.script[candidate.host]?.shift();
    if (!step) throw new Error(`unexpected connect to ${candidate.host}`);
    const address = candidate.addresses[0]!;
    if (step === 'compliant') {
      const judgement: SessionJudgement = { compliant: true, classification: null, code: 'compliant', reason: 'ok', wouldFail: [] };
      return { ok: true, session: fakeSession(candidate.host, address), judgement, attempts: [{ address, error: null, judgement }] };
    }
    if (step === 'expired-cert') {
      const judgement: SessionJudgement = { compliant: false, classification: 'non-compliant', code: 'certificate-untrusted', reason: 'certificate not trusted (CERT_HAS_EXPIRED)', wouldFail: [] };
      const session = fakeSession(candidate.host, address, 'CERT_HAS_EXPIRED');
      return { ok: false, classification: 'non-compliant', code: judgement.code, reason: judgement.reason, attempts: [{ address, error: null, judgement }], session, starttlsAdvertised: true };
    }
    const error = new MxSessionError(step.code, step.error, step.code, step.code === 'starttls-not-offered' ? false : null, null, null, '127.0.0.1');
    return { ok: false, classification: step.error, code: step.code, reason: step.code, attempts: [{ address, error, judgement: null }], session: null, starttlsAdvertised: null };
  }
  async send(_session: MxSession, input: { recipients: string[]; body: Readable }) {
    input.body.destroy();
    return { kind: 'answered' as const, recipients: new Map(input.recipients.map((a) => [a, { outcome: 'delivered' as const, reply: '250 ok' }])) };
  }
  async reset(): Promise<boolean> {
    return true;
  }
  async close(): Promise<void> {}
}

function candidate(host: string, i: number): Candidate {
  return { host, preference: 10 * (i + 1), addresses: [`127.0.0.${20 + i}`], port: 25, requireValidCert: true, stsMatch: null, servername: host, stsTesting: false, implicit: false, dane: null };
}

function deliverPlan(hosts: string[], extra: Partial<Extract<DeliveryPlan, { kind: 'deliver' }>> = {}): DeliveryPlan {
  const candidates = hosts.map(candidate);
  return {
    kind: 'deliver',
    domain: DOMAIN,
    policy: { source: 'default', mode: null, id: null, level: 'verify' },
    mtaSts: null,
    hosts: candidates.map((c) => ({ host: c.host, preference: c.preference, implicit: false, addresses: c.addresses, port: 25, stsMatch: null, dane: null, excluded: null })),
    candidates,
    wouldFail: [],
    ...extra,
  };
}

function job(params: ClaimedJob['message']['params'] = {}): ClaimedJob {
  return {
    job: {
      id: `m1/${DOMAIN}`,
      messageId: 'm1',
      domain: DOMAIN,
      state: 'queued',
      recipients: [{ address: `a@${DOMAIN}`, state: 'pending', history: [] }],
      dueAt: NOW,
      attempts: 0,
      createdAt: NOW,
      updatedAt: NOW,
    },
    message: { id: 'm1', from: 'clinic@sender.test', size: 10, receivedAt: NOW, params, client: { ip: '127.0.0.1', listener: 'submission' }, headers: {} },
  };
}

function setup(wire: Wire, planFor: () => DeliveryPlan, route: { host: string; port: number } | null = null) {
  const config = parseConfig({ hostname: 'relay.test', listeners: [{ name: 'submission', port: 0, tls: 'starttls', auth: 'required' }], delivery: { maxMessagesPerConnection: 10 } }, {}, '/tmp');
  const store = { openBody: async () => Readable.from([Buffer.from('x\r\n')]), enqueue: async () => ({ id: 'dsn' }) } as unknown as Store;
  const policy = {
    planner: { planDelivery: async () => planFor(), planOpportunistic: async () => planFor(), domainRule: () => ({ level: 'verify', source: 'default', route }) },
    sessionOptions: {},
  } as unknown as PolicyRuntime;
  const evidence: DeliveryEngineDeps['evidence'] = { recordOutcomes: async () => undefined };
  const events: TlsSessionEvent[] = [];
  const counters = memoryCounters();
  const recorder = createTlsRptRecorder({ counters, logger: silentLogger() });
  const engine = new DeliveryEngine({
    config,
    store,
    policy,
    logger: silentLogger(),
    evidence,
    now: () => NOW,
    connector: wire as unknown as MxConnector,
    tlsSessions: {
      tlsSessions: (e) => {
        events.push(...e);
        recorder.tlsSessions(e);
      },
    },
  });
  const report = async () => {
    await recorder.flush();
    const r = await buildReport({ counters, domain: DOMAIN, day: DAY, organizationName: 'o', contactInfo: 'c@relay.test', submitter: 'relay.test' });
    expect(validateReport(r)).toEqual([]);
    return r;
  };
  return { engine, events, report };
}

const signal = new AbortController().signal;

describe('TLS sessions the delivery engine reports', () => {
  test('a new connection is a session; a pooled reuse is not', async () => {
    const wire = new Wire({ 'mx1.example.test': ['compliant'] });
    const { engine, events, report } = setup(wire, () => deliverPlan(['mx1.example.test']));
    await engine.deliverJob(job(), signal);
    await engine.deliverJob(job(), signal);
    expect(wire.connects).toBe(1);
    expect(events).toEqual([expect.objectContaining({ domain: DOMAIN, mx: 'mx1.example.test', address: '127.0.0.20', localAddress: '127.0.0.1', failure: null })]);
    expect((await report()).policies.map((p) => p.summary)).toEqual([{ 'total-successful-session-count': 1, 'total-failure-session-count': 0 }]);
    await engine.close();
  });

  test('failures map to result types; a transient failure is reported by the engine but not counted', async () => {
    const wire = new Wire({
      'mx1.example.test': [{ error: 'transient', code: 'connect-failed' }],
      'mx2.example.test': [{ error: 'non-compliant', code: 'starttls-not-offered' }],
      'mx3.example.test': ['expired-cert'],
      'mx4.example.test': ['compliant'],
    });
    const { engine, events, report } = setup(wire, () => deliverPlan(['mx1.example.test', 'mx2.example.test', 'mx3.example.test', 'mx4.example.test']));
    await engine.deliverJob(job(), signal);
    expect(events.map((e) => e.failure?.code ?? 'ok')).toEqual(['connect-failed', 'starttls-not-offered', 'certificate-untrusted', 'ok']);
    const [entry] = (await report()).policies;
    expect(entry!.summary).toEqual({ 'total-successful-session-count': 1, 'total-failure-session-count': 2 });
    expect(entry!['failure-details'].map((d) => [d['result-type'], d['receiving-mx-hostname'], d['sending-mta-ip'], d['failure-reason-code']])).toEqual([
      ['certificate-expired', 'mx3.example.test', '127.0.0.1', 'CERT_HAS_EXPIRED'],
      ['starttls-not-supported', 'mx2.example.test', '127.0.0.1', 'starttls-not-offered'],
    ]);
    await engine.close();
  });

  test('plan-time policy failures count under the MTA-STS policy: fetch failure, MX not in the policy', async () => {
    const sts = { mode: 'enforce' as const, mx: ['mx1.example.test'], maxAge: 86400 };
    const wire = new Wire({ 'mx1.example.test': ['compliant'] });
    const { engine, report } = setup(wire, () => {
      const p = deliverPlan(['mx1.example.test']);
      return {
        ...p,
        mtaSts: { record: { id: '2' }, policy: sts, policyId: '1', source: 'cache', error: 'fetch failed', errorType: 'sts-policy-fetch-error', temporary: false },
        hosts: [...p.hosts, { host: 'rogue.example.test', preference: 20, implicit: false, addresses: ['127.0.0.99'], port: 25, stsMatch: false, dane: null, excluded: 'mx-not-in-policy' }],
      };
    });
    await engine.deliverJob(job(), signal);
    const [entry] = (await report()).policies;
    expect(entry!.policy['policy-type']).toBe('sts');
    expect(entry!.summary).toEqual({ 'total-successful-session-count': 1, 'total-failure-session-count': 2 });
    expect(entry!['failure-details'].map((d) => [d['result-type'], d['receiving-mx-hostname'] ?? null])).toEqual([
      ['sts-policy-fetch-error', null],
      ['validation-failure', 'rogue.example.test'],
    ]);
    await engine.close();
  });

  test('an MTA-STS testing policy: a session to an MX it does not list fails it although the mail goes', async () => {
    const sts = { mode: 'testing' as const, mx: ['mx9.example.test'], maxAge: 86400 };
    const wire = new Wire({ 'mx1.example.test': ['compliant'] });
    const { engine, report } = setup(wire, () => ({
      ...deliverPlan(['mx1.example.test'], { wouldFail: [{ host: 'mx1.example.test', reason: 'mx-not-in-policy' }] }),
      mtaSts: { record: { id: '1' }, policy: sts, policyId: '1', source: 'fetched', error: null, errorType: null, temporary: false },
    }));
    const result = await engine.deliverJob(job(), signal);
    expect(result.recipients[0]!.outcome).toBe('delivered');
    const [entry] = (await report()).policies;
    expect(entry!.summary).toEqual({ 'total-successful-session-count': 0, 'total-failure-session-count': 1 });
    expect(entry!['failure-details'][0]!['failure-reason-code']).toMatch(/^mx-not-in-policy/);
    await engine.close();
  });

  test.each([
    ['a portal notice', { notice: { kind: 'link' } }],
    ['a TLS report the relay sends', { tlsReport: true }],
  ])('%s is not counted', async (_name, params) => {
    const wire = new Wire({ 'mx1.example.test': ['compliant'] });
    const { engine, events } = setup(wire, () => deliverPlan(['mx1.example.test']));
    // A notice goes the opportunistic way, which the wire here does not offer: it must not get as far as counting.
    const connector = wire as unknown as MxConnector;
    connector.connectOpportunistic = async () => ({ ok: false, classification: 'transient', code: 'connect-failed', reason: 'x', attempts: [] });
    await engine.deliverJob(job(params), signal);
    expect(events).toEqual([]);
    await engine.close();
  });

  test('a routed domain is not counted: the next hop is not its MX', async () => {
    const wire = new Wire({ 'mx1.example.test': ['compliant'] });
    const { engine, events } = setup(wire, () => deliverPlan(['mx1.example.test']), { host: 'smarthost.test', port: 25 });
    await engine.deliverJob(job(), signal);
    expect(wire.connects).toBe(1);
    expect(events).toEqual([]);
    await engine.close();
  });
});
