import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { parseConfig } from '../../src/config/load';
import { createLogger, silentLogger, type Logger } from '../../src/log/logger';
import type { AttemptClass, TransactionResult } from '../../src/outcome';
import { DeliveryEngine, type DeliveryEngineDeps } from '../../src/outbound/engine';
import type { DeliveryEvidence } from '../../src/evidence/delivery';
import type { Candidate, DeliveryPlan, PolicyRuntime } from '../../src/policy';
import {
  connectOpportunistic,
  MxSessionError,
  type CandidateConnection,
  type MxConnector,
  type MxSession,
  type MxSessionOptions,
  type MxTarget,
  type OpportunisticConnection,
  type OpportunisticSession,
  type SessionJudgement,
  type TransactionInput,
} from '../../src/smtp-client';
import { FileStore } from '../../src/store/file/file-store';
import { DamagedEntryError, StoreError, StoreUnavailableError, type ClaimedJob, type JobResult, type Store } from '../../src/store/types';

/**
 * The delivery engine with a fake wire (chasquid's TestCourier idea): scripted connects and
 * transactions per MX host, no sockets. Checks that the engine drives the candidates as the
 * outcome rule expects and records what happened.
 */

const DOMAIN = 'example.test';
const NOW = 1_800_000_000_000;

type ConnectStep = 'compliant' | 'compliant-dsn' | { fail: AttemptClass; code: string };
type SendStep = (input: TransactionInput) => TransactionResult;

class FakeConnector implements MxConnector {
  readonly connects: Array<{ host: string; requireValidCert: boolean }> = [];
  readonly sends: Array<{ host: string; recipients: string[]; session: MxSession; dsn?: TransactionInput['dsn'] }> = [];
  readonly closed: MxSession[] = [];
  readonly resets: MxSession[] = [];

  constructor(
    private readonly connectScript: Record<string, ConnectStep[]>,
    private readonly sendScript: Record<string, SendStep[]> = {},
  ) {}

  async connect(candidate: Pick<Candidate, 'host' | 'addresses' | 'requireValidCert'>): Promise<CandidateConnection> {
    this.connects.push({ host: candidate.host, requireValidCert: candidate.requireValidCert });
    const step = this.connectScript[candidate.host]?.shift();
    if (!step) throw new Error(`unexpected connect to ${candidate.host}`);
    const address = candidate.addresses[0]!;
    if (step === 'compliant' || step === 'compliant-dsn') {
      const judgement: SessionJudgement = { compliant: true, classification: null, code: 'compliant', reason: 'TLSv1.3 TLS_AES_256_GCM_SHA384', wouldFail: [] };
      const session = fakeSession(candidate.host, address);
      if (step === 'compliant-dsn') session.ehlo = [...session.ehlo, 'DSN'];
      return { ok: true, session, judgement, attempts: [{ address, error: null, judgement }] };
    }
    const error = new MxSessionError(`${step.code} at ${candidate.host}`, step.fail, step.code, step.code === 'starttls-not-offered' ? false : null, null);
    return {
      ok: false,
      classification: step.fail,
      code: step.code,
      reason: error.message,
      attempts: [{ address, error, judgement: null }],
      session: null,
      starttlsAdvertised: error.starttlsAdvertised,
    };
  }

  async send(session: MxSession, input: TransactionInput): Promise<TransactionResult> {
    input.body.destroy();
    this.sends.push({ host: session.target.host, recipients: input.recipients, session, ...(input.dsn ? { dsn: input.dsn } : {}) });
    const step = this.sendScript[session.target.host]?.shift();
    if (!step) throw new Error(`unexpected transaction with ${session.target.host}`);
    return step(input);
  }

  /** How each MX behaves towards the opportunistic client (notices). */
  readonly opportunisticScript: Record<string, Array<'plaintext' | 'tls13' | 'tls10-only' | { fail: AttemptClass; code: string }>> = {};
  readonly opportunisticConnects: Array<{ host: string; tries: string[] }> = [];
  readonly opportunisticClosed: OpportunisticSession[] = [];

  /** The real retry logic (connectOpportunistic) over a fake session opener. */
  async connectOpportunistic(candidate: Pick<Candidate, 'host' | 'addresses' | 'port' | 'servername'>, options: MxSessionOptions): Promise<OpportunisticConnection> {
    const step = this.opportunisticScript[candidate.host]?.shift();
    if (!step) throw new Error(`unexpected opportunistic connect to ${candidate.host}`);
    const tries: string[] = [];
    this.opportunisticConnects.push({ host: candidate.host, tries });
    const open = async (target: MxTarget, _options: MxSessionOptions, tls: 'profile' | 'permissive'): Promise<OpportunisticSession> => {
      tries.push(tls);
      if (typeof step === 'object') throw new MxSessionError(`${step.code} at ${target.host}`, step.fail, step.code, null, null);
      if (step === 'tls10-only' && tls === 'profile') {
        throw new MxSessionError('no TLS session within the profile', 'non-compliant', 'tls-handshake-failed', true, null);
      }
      const negotiated =
        step === 'plaintext'
          ? null
          : step === 'tls10-only'
            ? { protocol: 'TLSv1', cipher: 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA', group: 'P-256', groupBits: 256, peerKey: null }
            : { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', group: 'X25519', groupBits: 253, peerKey: null };
      return {
        target,
        connection: { destroyed: false } as unknown as OpportunisticSession['connection'],
        starttlsAdvertised: step !== 'plaintext',
        protection: step === 'plaintext' ? 'plaintext' : tls,
        negotiated,
        certificate: negotiated ? fakeSession(target.host, target.address).certificate : null,
      };
    };
    return connectOpportunistic(candidate, options, open);
  }

  async sendOpportunistic(session: OpportunisticSession, input: TransactionInput): Promise<TransactionResult> {
    input.body.destroy();
    this.sends.push({ host: session.target.host, recipients: input.recipients, session: session as unknown as MxSession });
    const step = this.sendScript[session.target.host]?.shift();
    if (!step) throw new Error(`unexpected transaction with ${session.target.host}`);
    return step(input);
  }

  async closeOpportunistic(session: OpportunisticSession): Promise<void> {
    this.opportunisticClosed.push(session);
  }

  async reset(session: MxSession): Promise<boolean> {
    this.resets.push(session);
    return true;
  }

  async close(session: MxSession): Promise<void> {
    this.closed.push(session);
    (session.connection as { destroyed: boolean }).destroyed = true;
  }
}

function fakeSession(host: string, address: string): MxSession {
  return {
    target: { host, address, port: 25, servername: host },
    connection: { destroyed: false },
    socket: { destroyed: false },
    starttlsAdvertised: true,
    ehlo: ['STARTTLS', 'REQUIRETLS'],
    negotiated: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', group: 'P-256' },
    profileCheck: { compliant: true, problems: [] },
    certificate: { subject: `CN=${host}`, issuer: 'CN=Test CA', validFrom: null, validTo: null, fingerprint256: null, trusted: true, nameMatch: true, error: null },
  } as unknown as MxSession;
}

const everyone =
  (outcome: 'delivered' | 'bounced' | 'deferred', reply: string, except: Record<string, [outcome: 'delivered' | 'bounced' | 'deferred', reply: string]> = {}): SendStep =>
  (input) => ({
    kind: 'answered',
    recipients: new Map(input.recipients.map((a) => [a, except[a] ? { outcome: except[a][0], reply: except[a][1] } : { outcome, reply }])),
  });
const failure =
  (classification: AttemptClass, code: string, reply: string | null, bodySent = false): SendStep =>
  () => ({ kind: 'failed', classification, code, reply, reason: `${code}`, bodySent });

function plan(hosts: string[]): DeliveryPlan {
  const candidates: Candidate[] = hosts.map((host, i) => ({
    host,
    preference: 10 * (i + 1),
    addresses: [`192.0.2.${i + 1}`],
    port: 25,
    requireValidCert: false,
    stsMatch: null,
    servername: host,
    stsTesting: false,
    implicit: false,
    dane: null,
  }));
  return {
    kind: 'deliver',
    domain: DOMAIN,
    policy: { source: 'default', mode: null, id: null, level: 'encrypt' },
    mtaSts: null,
    hosts: candidates.map((c) => ({ host: c.host, preference: c.preference, addresses: c.addresses, port: 25, stsMatch: null, excluded: null })) as unknown as Extract<
      DeliveryPlan,
      { kind: 'deliver' }
    >['hosts'],
    candidates,
    wouldFail: [],
  };
}

const planOf = (hosts: string[] | DeliveryPlan): DeliveryPlan => (Array.isArray(hosts) ? plan(hosts) : hosts);

/** A plan whose candidates are changed as given (MTA-STS enforce, DANE, ...). */
function planWith(hosts: string[], change: (c: Candidate) => Partial<Candidate>, mtaSts: DeliveryPlan['mtaSts'] = null): DeliveryPlan {
  const base = plan(hosts) as Extract<DeliveryPlan, { kind: 'deliver' }>;
  return { ...base, mtaSts, candidates: base.candidates.map((c) => ({ ...c, ...change(c) })) };
}

const enforce = (): Partial<Candidate> => ({ stsMatch: true, requireValidCert: true });

function claimed(recipients: string[], params: ClaimedJob['message']['params'] = {}): ClaimedJob {
  return {
    job: {
      id: `m1/${DOMAIN}`,
      messageId: 'm1',
      domain: DOMAIN,
      state: 'queued',
      recipients: recipients.map((address) => ({ address, state: 'pending' as const, history: [] })),
      dueAt: NOW,
      attempts: 0,
      createdAt: NOW,
      updatedAt: NOW,
    },
    message: { id: 'm1', from: 'clinic@sender.test', size: 64, receivedAt: NOW, params, client: { ip: '127.0.0.1', listener: 'submission' }, headers: {} },
  };
}

function engineWith(
  connector: FakeConnector,
  hosts: string[] | DeliveryPlan,
  openBody?: () => Promise<Readable>,
  delivery: Record<string, unknown> = {},
  real: { store?: Store; logger?: Logger } = {},
) {
  const config = parseConfig({ hostname: 'relay.test', listeners: [{ name: 'submission', port: 0, tls: 'starttls', auth: 'required' }], delivery }, {}, '/tmp');
  const enqueued: Array<{ from: string; recipients: Array<{ address: string }> }> = [];
  /** The DSNs queued, as text, in order. */
  const bodies: string[] = [];
  const store =
    real.store ??
    ({
      openBody: openBody ?? (async () => Readable.from([Buffer.from('Subject: results\r\n\r\nprivate\r\n')])),
      enqueue: async (message: { from: string; recipients: Array<{ address: string }> }, body: Readable) => {
        enqueued.push(message);
        const chunks: Buffer[] = [];
        for await (const chunk of body) chunks.push(chunk as Buffer);
        bodies.push(Buffer.concat(chunks).toString('utf8'));
        return { id: `dsn${enqueued.length}` };
      },
    } as unknown as Store);
  const policy = {
    planner: { planDelivery: async () => planOf(hosts), planOpportunistic: async () => planOf(hosts), domainRule: () => ({ level: 'encrypt', source: 'default', route: null }) },
    sessionOptions: {},
  } as unknown as PolicyRuntime;
  const evidence: DeliveryEngineDeps['evidence'] = { recordOutcomes: async () => undefined };
  const engine = new DeliveryEngine({ config, store, policy, logger: real.logger ?? silentLogger(), evidence, now: () => NOW, connector });
  return { engine, enqueued, bodies };
}

const evidence = (result: JobResult, address: string) => result.recipients.find((r) => r.address === address)!.evidence as DeliveryEvidence;
const outcomes = (result: JobResult) => Object.fromEntries(result.recipients.map((r) => [r.address, [r.outcome, r.evidence.reason]]));
const run = new AbortController().signal;

describe('DeliveryEngine with a fake SMTP client', () => {
  it('a body the store finds damaged before sending ends the job: the session is closed and no other MX is tried', async () => {
    const connector = new FakeConnector({ 'mx1.example.test': ['compliant'], 'mx2.example.test': ['compliant'] });
    const { engine } = engineWith(connector, ['mx1.example.test', 'mx2.example.test'], async () => {
      throw new DamagedEntryError('message m1: body has 3 of the 64 bytes stored at enqueue; quarantined');
    });
    const failure = await engine.deliverJob(claimed(['a@example.test']), run).catch((error: unknown) => error);
    expect((failure as StoreError).code).toBe('damaged');
    expect(connector.connects.map((c) => c.host)).toEqual(['mx1.example.test']);
    expect(connector.sends).toHaveLength(0);
    expect(connector.closed).toHaveLength(1);
  });

  it('a body found damaged while streaming ends the job instead of a retry or a redial', async () => {
    const damagedWhileSending: SendStep = (input) => {
      input.body.emit('error', new DamagedEntryError('message m1: body does not match the SHA-256 stored at enqueue; quarantined'));
      return { kind: 'failed', classification: 'transient', code: 'connection-lost', reply: null, reason: 'connection lost', bodySent: false };
    };
    const connector = new FakeConnector({ 'mx1.example.test': ['compliant'], 'mx2.example.test': ['compliant'] }, { 'mx1.example.test': [damagedWhileSending] });
    const { engine } = engineWith(connector, ['mx1.example.test', 'mx2.example.test']);
    const failure = await engine.deliverJob(claimed(['a@example.test']), run).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(StoreError);
    expect((failure as StoreError).code).toBe('damaged');
    expect(connector.sends.map((c) => c.host)).toEqual(['mx1.example.test']);
    expect(connector.closed).toHaveLength(1);
  });

  it('delivers over the first compliant MX and keeps the connection for the next message', async () => {
    const connector = new FakeConnector({ 'mx1.example.test': ['compliant'] }, { 'mx1.example.test': [everyone('delivered', '250 2.0.0 queued')] });
    const { engine } = engineWith(connector, ['mx1.example.test', 'mx2.example.test']);
    const result = await engine.deliverJob(claimed(['a@example.test', 'b@example.test']), run);
    expect(outcomes(result)).toEqual({ 'a@example.test': ['delivered', 'delivered'], 'b@example.test': ['delivered', 'delivered'] });
    expect(result.retryAt).toBeUndefined();
    expect(evidence(result, 'a@example.test')).toMatchObject({
      mx: 'mx1.example.test',
      ip: '192.0.2.1',
      reply: '250 2.0.0 queued',
      tls: { protocol: 'TLSv1.3' },
      mxAttempts: [{ mx: 'mx1.example.test', class: 'ok', code: 'ok' }],
    });
    expect(connector.connects.map((c) => c.host)).toEqual(['mx1.example.test']);
    expect(connector.resets).toHaveLength(1);
    expect(connector.closed).toHaveLength(0);
    await engine.close();
    expect(connector.closed).toHaveLength(1);
  });

  it('a 5xx to one RCPT bounces that recipient only, with a DSN to the sender', async () => {
    const connector = new FakeConnector({ 'mx1.example.test': ['compliant'] }, { 'mx1.example.test': [everyone('delivered', '250 ok', { 'b@example.test': ['bounced', '550 5.1.1 no such user'] })] });
    const { engine, enqueued } = engineWith(connector, ['mx1.example.test']);
    const result = await engine.deliverJob(claimed(['a@example.test', 'b@example.test']), run);
    expect(outcomes(result)).toEqual({ 'a@example.test': ['delivered', 'delivered'], 'b@example.test': ['bounced', 'rcpt-550'] });
    expect(evidence(result, 'b@example.test')).toMatchObject({ status: '5.1.1', reply: '550 5.1.1 no such user', mx: 'mx1.example.test' });
    expect(enqueued).toEqual([expect.objectContaining({ from: '', recipients: [{ address: 'clinic@sender.test' }] })]);
    await engine.close();
  });

  it('every MX non-compliant with the same cause: diverted with that cause, nothing sent', async () => {
    const connector = new FakeConnector({
      'mx1.example.test': [{ fail: 'non-compliant', code: 'starttls-not-offered' }],
      'mx2.example.test': [{ fail: 'non-compliant', code: 'starttls-not-offered' }],
    });
    const { engine } = engineWith(connector, ['mx1.example.test', 'mx2.example.test']);
    const result = await engine.deliverJob(claimed(['a@example.test']), run);
    expect(result.recipients[0]).toMatchObject({ outcome: 'diverted', divertReason: 'starttls-not-offered', evidence: { reason: 'starttls-not-offered', mx: null } });
    expect(evidence(result, 'a@example.test').mxAttempts.map((a) => [a.mx, a.class, a.starttls])).toEqual([
      ['mx1.example.test', 'non-compliant', false],
      ['mx2.example.test', 'non-compliant', false],
    ]);
    expect(connector.sends).toHaveLength(0);
  });

  it('different causes: diverted no-compliant-mx', async () => {
    const connector = new FakeConnector({
      'mx1.example.test': [{ fail: 'non-compliant', code: 'starttls-not-offered' }],
      'mx2.example.test': [{ fail: 'non-compliant', code: 'tls-handshake-failed' }],
    });
    const { engine } = engineWith(connector, ['mx1.example.test', 'mx2.example.test']);
    const result = await engine.deliverJob(claimed(['a@example.test']), run);
    expect(result.recipients[0]).toMatchObject({ outcome: 'diverted', divertReason: 'no-compliant-mx' });
  });

  it('a transient failure defers with its code and a retry time', async () => {
    const connector = new FakeConnector({ 'mx1.example.test': [{ fail: 'transient', code: 'connect-failed' }], 'mx2.example.test': [{ fail: 'non-compliant', code: 'starttls-not-offered' }] });
    const { engine } = engineWith(connector, ['mx1.example.test', 'mx2.example.test']);
    const result = await engine.deliverJob(claimed(['a@example.test']), run);
    expect(outcomes(result)).toEqual({ 'a@example.test': ['deferred', 'connect-failed'] });
    expect(result.retryAt).toBeGreaterThanOrEqual(NOW + 60_000);
    expect(result.retryAt).toBeLessThanOrEqual(NOW + 66_000);
  });

  it('still transient after delivery.maxQueueTime: diverted queue-time-expired', async () => {
    const connector = new FakeConnector({ 'mx1.example.test': [{ fail: 'transient', code: 'connect-failed' }] });
    const { engine } = engineWith(connector, ['mx1.example.test']);
    const job = claimed(['a@example.test']);
    const result = await engine.deliverJob({ ...job, message: { ...job.message, receivedAt: NOW - 86_400_000 } }, run);
    expect(result.recipients[0]).toMatchObject({ outcome: 'diverted', divertReason: 'queue-time-expired', evidence: { reply: 'last problem: connect-failed' } });
  });

  it('connection lost after the body was sent: deferred, no other MX tried', async () => {
    const connector = new FakeConnector({ 'mx1.example.test': ['compliant'], 'mx2.example.test': ['compliant'] }, { 'mx1.example.test': [failure('transient', 'connection-lost', null, true)] });
    const { engine } = engineWith(connector, ['mx1.example.test', 'mx2.example.test']);
    const result = await engine.deliverJob(claimed(['a@example.test']), run);
    expect(outcomes(result)).toEqual({ 'a@example.test': ['deferred', 'connection-lost'] });
    expect(evidence(result, 'a@example.test')).toMatchObject({ mx: 'mx1.example.test' });
    expect(connector.connects.map((c) => c.host)).toEqual(['mx1.example.test']);
    expect(connector.closed.map((s) => s.target.host)).toEqual(['mx1.example.test']);
  });

  it('a pooled connection that died while idle is dialled again once, and only the new session is evidence', async () => {
    const connector = new FakeConnector(
      { 'mx1.example.test': ['compliant', 'compliant'] },
      { 'mx1.example.test': [everyone('delivered', '250 first'), failure('transient', 'connection-lost', null, false), everyone('delivered', '250 second')] },
    );
    const { engine } = engineWith(connector, ['mx1.example.test']);
    await engine.deliverJob(claimed(['a@example.test']), run);
    const second = await engine.deliverJob(claimed(['b@example.test']), run);
    expect(outcomes(second)).toEqual({ 'b@example.test': ['delivered', 'delivered'] });
    expect(connector.connects).toHaveLength(2);
    expect(connector.sends).toHaveLength(3);
    expect(connector.sends[1]!.session).toBe(connector.sends[0]!.session);
    expect(connector.closed).toContain(connector.sends[0]!.session);
    expect(evidence(second, 'b@example.test')).toMatchObject({ reply: '250 second', mxAttempts: [{ class: 'ok' }] });
    await engine.close();
  });

  it('REQUIRETLS that no MX can meet: verify-level connects, then bounced requiretls-unavailable 5.7.30', async () => {
    const connector = new FakeConnector(
      { 'mx1.example.test': ['compliant'], 'mx2.example.test': ['compliant'] },
      { 'mx1.example.test': [failure('non-compliant', 'requiretls-not-supported', null)], 'mx2.example.test': [failure('non-compliant', 'requiretls-not-supported', null)] },
    );
    const { engine, enqueued } = engineWith(connector, planWith(['mx1.example.test', 'mx2.example.test'], enforce));
    const result = await engine.deliverJob(claimed(['a@example.test'], { requireTls: true }), run);
    expect(outcomes(result)).toEqual({ 'a@example.test': ['bounced', 'requiretls-unavailable'] });
    expect(evidence(result, 'a@example.test')).toMatchObject({ status: '5.7.30', reply: '550 5.7.30 REQUIRETLS support required' });
    expect(connector.connects).toEqual([
      { host: 'mx1.example.test', requireValidCert: true },
      { host: 'mx2.example.test', requireValidCert: true },
    ]);
    expect(enqueued).toHaveLength(1);
  });

  it('REQUIRETLS to a domain with neither MTA-STS nor DANE: no MX is dialled, every recipient bounces 5.7.30 at once, the DSN has no body', async () => {
    const connector = new FakeConnector({});
    const { engine, enqueued, bodies } = engineWith(connector, ['mx1.example.test', 'mx2.example.test']);
    const result = await engine.deliverJob(claimed(['a@example.test', 'b@example.test'], { requireTls: true, dsn: { ret: 'FULL' } }), run);
    expect(outcomes(result)).toEqual({ 'a@example.test': ['bounced', 'requiretls-unavailable'], 'b@example.test': ['bounced', 'requiretls-unavailable'] });
    expect(result.retryAt).toBeUndefined();
    expect(connector.connects).toEqual([]);
    expect(evidence(result, 'b@example.test')).toMatchObject({
      status: '5.7.30',
      reply: '550 5.7.30 REQUIRETLS support required',
      mxAttempts: [
        { mx: 'mx1.example.test', ip: null, class: 'non-compliant', code: 'requiretls-unauthenticated-mx' },
        { mx: 'mx2.example.test', ip: null, class: 'non-compliant', code: 'requiretls-unauthenticated-mx' },
      ],
    });
    expect(enqueued).toHaveLength(1);
    expect(bodies[0]).toContain('Status: 5.7.30');
    expect(bodies[0]).toContain('Subject: results');
    expect(bodies[0]).not.toContain('private');
  });

  it('REQUIRETLS skips the MX nothing authenticates and delivers to the DANE-authenticated one, passing the parameter on', async () => {
    const inputs: TransactionInput[] = [];
    const connector = new FakeConnector(
      { 'mx2.example.test': ['compliant'] },
      {
        'mx2.example.test': [
          (input) => {
            inputs.push(input);
            return everyone('delivered', '250 2.0.0 ok')(input);
          },
        ],
      },
    );
    const tlsa = { usage: 3, selector: 1, matchingType: 1, data: 'ab'.repeat(32) };
    const dane = (secure: boolean): Candidate['dane'] =>
      secure
        ? { state: 'secure-tlsa', records: [tlsa], usable: [tlsa], referenceNames: ['mx2.example.test'], tlsaName: '_25._tcp.mx2.example.test', reason: 'secure' }
        : { state: 'insecure', records: [], usable: [], referenceNames: [], tlsaName: null, reason: 'unsigned' };
    const { engine } = engineWith(
      connector,
      planWith(['mx1.example.test', 'mx2.example.test'], (c) => ({ dane: dane(c.host === 'mx2.example.test') })),
    );
    const result = await engine.deliverJob(claimed(['a@example.test'], { requireTls: true }), run);
    expect(outcomes(result)).toEqual({ 'a@example.test': ['delivered', 'delivered'] });
    expect(connector.connects.map((c) => c.host)).toEqual(['mx2.example.test']);
    expect(inputs.map((i) => i.requireTls)).toEqual([true]);
    expect(evidence(result, 'a@example.test').mxAttempts.map((a) => [a.mx, a.code])).toEqual([
      ['mx1.example.test', 'requiretls-unauthenticated-mx'],
      ['mx2.example.test', 'ok'],
    ]);
    await engine.close();
  });

  it('REQUIRETLS while the published MTA-STS policy cannot be fetched: deferred, nothing dialled, no DSN', async () => {
    const connector = new FakeConnector({});
    const mtaSts = { record: { id: '1' }, policy: null, policyId: null, source: null, error: 'HTTP 503', errorType: 'sts-policy-fetch-error' as const, temporary: false };
    const { engine, enqueued } = engineWith(
      connector,
      planWith(['mx1.example.test'], () => ({}), mtaSts),
    );
    const result = await engine.deliverJob(claimed(['a@example.test'], { requireTls: true }), run);
    expect(outcomes(result)).toEqual({ 'a@example.test': ['deferred', 'requiretls-mta-sts-unavailable'] });
    expect(result.retryAt).toBeDefined();
    expect(connector.connects).toEqual([]);
    expect(enqueued).toHaveLength(0);
  });

  it('a message without REQUIRETLS to the same unauthenticated MX is still delivered as before', async () => {
    const connector = new FakeConnector({ 'mx1.example.test': ['compliant'] }, { 'mx1.example.test': [everyone('delivered', '250 ok')] });
    const { engine } = engineWith(connector, ['mx1.example.test']);
    const result = await engine.deliverJob(claimed(['a@example.test']), run);
    expect(outcomes(result)).toEqual({ 'a@example.test': ['delivered', 'delivered'] });
    expect(connector.connects).toEqual([{ host: 'mx1.example.test', requireValidCert: false }]);
    await engine.close();
  });

  it('TLS-Required: No is ignored for a REQUIRETLS message, even where the admin honours it', async () => {
    const connector = new FakeConnector({ 'mx1.example.test': ['compliant'] }, { 'mx1.example.test': [everyone('delivered', '250 ok')] });
    const { engine } = engineWith(
      connector,
      planWith(['mx1.example.test', 'mx2.example.test'], (c) => (c.host === 'mx1.example.test' ? enforce() : {})),
      undefined,
      { honorTlsRequiredNo: true },
    );
    const job = claimed(['a@example.test'], { requireTls: true });
    job.message.headers = { tlsRequired: 'No' };
    const result = await engine.deliverJob(job, run);
    expect(outcomes(result)).toEqual({ 'a@example.test': ['delivered', 'delivered'] });
    expect(connector.connects).toEqual([{ host: 'mx1.example.test', requireValidCert: true }]);
    await engine.close();
  });

  it('a job taken after shutdown began is handed back untouched', async () => {
    const connector = new FakeConnector({});
    const { engine } = engineWith(connector, ['mx1.example.test']);
    const stop = new AbortController();
    stop.abort();
    const result = await engine.deliverJob(claimed(['a@example.test']), stop.signal);
    expect(outcomes(result)).toEqual({ 'a@example.test': ['deferred', 'shutdown'] });
    expect(connector.connects).toHaveLength(0);
  });
});

describe('DeliveryEngine: portal notices go out with opportunistic TLS', () => {
  const notice = { notice: { itemId: 'item-1', kind: 'portal-link' } };

  it('a notice to an MX without STARTTLS is delivered in plaintext, with the evidence saying so', async () => {
    const connector = new FakeConnector({}, { 'mx1.example.test': [everyone('delivered', '250 2.0.0 queued')] });
    connector.opportunisticScript['mx1.example.test'] = ['plaintext'];
    const { engine, enqueued } = engineWith(connector, ['mx1.example.test']);
    const result = await engine.deliverJob(claimed(['a@example.test'], notice), run);
    expect(outcomes(result)).toEqual({ 'a@example.test': ['delivered', 'notice-delivered'] });
    expect(evidence(result, 'a@example.test')).toMatchObject({
      mx: 'mx1.example.test',
      tls: { protocol: 'plaintext', cipher: null, group: null },
      certificate: null,
      opportunistic: true,
      protection: 'plaintext',
      policy: { level: 'opportunistic', mode: null },
      reply: '250 2.0.0 queued',
    });
    expect(connector.connects).toHaveLength(0);
    expect(connector.opportunisticConnects).toEqual([{ host: 'mx1.example.test', tries: ['profile'] }]);
    expect(connector.opportunisticClosed).toHaveLength(1);
    expect(enqueued).toHaveLength(0);
  });

  it('a notice to a TLS-1.0-only MX: the profile handshake fails, the permissive retry carries it', async () => {
    const connector = new FakeConnector({}, { 'mx1.example.test': [everyone('delivered', '250 ok')] });
    connector.opportunisticScript['mx1.example.test'] = ['tls10-only'];
    const { engine } = engineWith(connector, ['mx1.example.test']);
    const result = await engine.deliverJob(claimed(['a@example.test'], notice), run);
    expect(outcomes(result)).toEqual({ 'a@example.test': ['delivered', 'notice-delivered'] });
    expect(connector.opportunisticConnects).toEqual([{ host: 'mx1.example.test', tries: ['profile', 'permissive'] }]);
    const ev = evidence(result, 'a@example.test');
    expect(ev).toMatchObject({ tls: { protocol: 'TLSv1', cipher: 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA' }, opportunistic: true, protection: 'permissive' });
    expect(ev.mxAttempts.map((a) => [a.code, a.class])).toEqual([
      ['tls-handshake-failed', 'non-compliant'],
      ['ok', 'ok'],
    ]);
  });

  it('a regular message to the same MX hosts still diverts, and never uses the opportunistic client', async () => {
    const connector = new FakeConnector({
      'mx1.example.test': [{ fail: 'non-compliant', code: 'starttls-not-offered' }],
      'mx2.example.test': [{ fail: 'non-compliant', code: 'tls-handshake-failed' }],
    });
    connector.opportunisticScript['mx1.example.test'] = ['plaintext'];
    connector.opportunisticScript['mx2.example.test'] = ['tls10-only'];
    const { engine } = engineWith(connector, ['mx1.example.test', 'mx2.example.test']);
    const result = await engine.deliverJob(claimed(['a@example.test']), run);
    expect(result.recipients[0]).toMatchObject({ outcome: 'diverted', divertReason: 'no-compliant-mx' });
    expect(connector.opportunisticConnects).toHaveLength(0);
    expect(connector.sends).toHaveLength(0);
  });

  it('an undeliverable notice defers per the schedule (never diverts), then bounces at expiry without a DSN', async () => {
    const connector = new FakeConnector({});
    connector.opportunisticScript['mx1.example.test'] = [
      { fail: 'transient', code: 'connect-failed' },
      { fail: 'transient', code: 'connect-failed' },
    ];
    const { engine, enqueued } = engineWith(connector, ['mx1.example.test']);
    const first = await engine.deliverJob(claimed(['a@example.test'], notice), run);
    expect(outcomes(first)).toEqual({ 'a@example.test': ['deferred', 'connect-failed'] });
    expect(first.retryAt).toBeGreaterThanOrEqual(NOW + 60_000);
    const job = claimed(['a@example.test'], notice);
    const last = await engine.deliverJob({ ...job, message: { ...job.message, receivedAt: NOW - 86_400_000 } }, run);
    expect(outcomes(last)).toEqual({ 'a@example.test': ['bounced', 'queue-time-expired'] });
    expect(last.recipients[0]!.divertReason).toBeUndefined();
    expect(enqueued).toHaveLength(0);
  });

  it('a 5xx to the notice bounces it, with no DSN to the portal address', async () => {
    const connector = new FakeConnector({}, { 'mx1.example.test': [everyone('bounced', '550 5.1.1 no such user')] });
    connector.opportunisticScript['mx1.example.test'] = ['tls13'];
    const { engine, enqueued } = engineWith(connector, ['mx1.example.test']);
    const result = await engine.deliverJob(claimed(['a@example.test'], notice), run);
    expect(outcomes(result)).toEqual({ 'a@example.test': ['bounced', 'rcpt-550'] });
    expect(enqueued).toHaveLength(0);
  });
});

describe('DeliveryEngine: compliant-only mail (scheduled reports to staff) goes over compliant TLS or not at all', () => {
  const report = { compliantOnly: { kind: 'report' } };

  it('delivered over a compliant session like any message (reason delivered), never the opportunistic client', async () => {
    const connector = new FakeConnector({ 'mx1.example.test': ['compliant'] }, { 'mx1.example.test': [everyone('delivered', '250 ok')] });
    connector.opportunisticScript['mx1.example.test'] = ['plaintext'];
    const { engine } = engineWith(connector, ['mx1.example.test']);
    const result = await engine.deliverJob(claimed(['a@example.test'], report), run);
    expect(outcomes(result)).toEqual({ 'a@example.test': ['delivered', 'delivered'] });
    expect(evidence(result, 'a@example.test').tls).toMatchObject({ protocol: 'TLSv1.3' });
    expect(connector.opportunisticConnects).toHaveLength(0);
  });

  it('no MX with compliant TLS: deferred (not diverted, not sent), then bounced at expiry with an error line and no DSN', async () => {
    const steps = (): ConnectStep[] => [{ fail: 'non-compliant', code: 'starttls-not-offered' }];
    const connector = new FakeConnector({
      'mx1.example.test': [...steps(), ...steps()],
      'mx2.example.test': [
        { fail: 'non-compliant', code: 'tls-handshake-failed' },
        { fail: 'non-compliant', code: 'tls-handshake-failed' },
      ],
    });
    connector.opportunisticScript['mx1.example.test'] = ['plaintext', 'plaintext'];
    const { engine, enqueued } = engineWith(connector, ['mx1.example.test', 'mx2.example.test']);
    const first = await engine.deliverJob(claimed(['a@example.test'], report), run);
    expect(first.recipients[0]).toMatchObject({ outcome: 'deferred' });
    expect(first.recipients[0]!.divertReason).toBeUndefined();
    expect(first.retryAt).toBeGreaterThan(NOW);
    const job = claimed(['a@example.test'], report);
    const last = await engine.deliverJob({ ...job, message: { ...job.message, receivedAt: NOW - 30 * 86_400_000 } }, run);
    expect(outcomes(last)).toEqual({ 'a@example.test': ['bounced', 'queue-time-expired'] });
    expect(last.recipients[0]!.divertReason).toBeUndefined();
    expect(connector.sends).toHaveLength(0);
    expect(connector.opportunisticConnects).toHaveLength(0);
    expect(enqueued).toHaveLength(0);
  });

  it('a domain at level portal (a divert plan) defers compliant-only mail instead of diverting it', async () => {
    const connector = new FakeConnector({});
    const { engine } = engineWith(connector, {
      kind: 'divert',
      code: 'portal-level',
      reason: 'always divert',
      domain: DOMAIN,
      hosts: [],
      policy: { source: 'domain-rule', mode: null, id: null, level: 'portal' },
      mtaSts: null,
    } as unknown as DeliveryPlan);
    const result = await engine.deliverJob(claimed(['a@example.test'], report), run);
    expect(outcomes(result)).toEqual({ 'a@example.test': ['deferred', 'portal-level'] });
    expect(result.recipients[0]!.divertReason).toBeUndefined();
  });
});

describe('DeliveryEngine: delay warnings and NOTIFY per recipient', () => {
  const HOUR = 3_600_000;
  const MX = 'mx1.example.test';
  type Rcpt = { address: string; notify?: string[]; orcpt?: string; delayWarnedAt?: number };

  /** A job whose message arrived `age` ago, with per-recipient DSN parameters. */
  function aged(recipients: Rcpt[], age: number, message: Partial<ClaimedJob['message']> = {}): ClaimedJob {
    const job = claimed([]);
    return {
      job: { ...job.job, recipients: recipients.map((r) => ({ ...r, state: 'pending' as const, history: [] })) },
      message: { ...job.message, receivedAt: NOW - age, ...message },
    };
  }
  const deferAt450 = (attempts = 1): FakeConnector =>
    new FakeConnector({ [MX]: ['compliant'] }, { [MX]: Array.from({ length: attempts }, () => everyone('deferred', '450 4.2.1 mailbox busy, try later')) });
  const deliveryStatus = (dsn: string) => /Content-Type: message\/delivery-status\r\n\r\n([\s\S]*?)\r\n--/.exec(dsn)?.[1] ?? '';

  it('a recipient still deferred past delivery.delayWarning gets one delayed DSN, flagged on its result', async () => {
    const { engine, enqueued, bodies } = engineWith(deferAt450(), [MX], undefined, { delayWarning: '4h' });
    const job = aged([{ address: 'a@example.test', orcpt: 'rfc822;A@example.test' }], 4 * HOUR + 1_000, { params: { dsn: { envid: 'ENV-7' } } });
    const result = await engine.deliverJob(job, run);
    expect(outcomes(result)).toEqual({ 'a@example.test': ['deferred', 'rcpt-450'] });
    expect(result.recipients[0]!.delayWarnedAt).toBe(NOW);
    expect(enqueued).toEqual([expect.objectContaining({ from: '', recipients: [{ address: 'clinic@sender.test' }] })]);
    const dsn = bodies[0]!;
    expect(dsn).toMatch(/^Subject: Delayed Mail \(still being retried\)/m);
    expect(dsn).toContain('THIS IS A WARNING ONLY');
    const status = deliveryStatus(dsn);
    expect(status).toContain('Original-Envelope-Id: ENV-7');
    expect(status).toContain('Final-Recipient: rfc822; a@example.test');
    expect(status).toContain('Original-Recipient: rfc822; A@example.test');
    expect(status).toContain('Action: delayed');
    expect(status).toContain('Status: 4.2.1');
    expect(status).toContain('Remote-MTA: dns; mx1.example.test');
    expect(status).toContain('Diagnostic-Code: smtp; 450 4.2.1 mailbox busy, try later');
    // Will-Retry-Until = arrival + maxQueueTime (24 h by default).
    expect(status).toContain(`Will-Retry-Until: ${new Date(NOW - 4 * HOUR - 1_000 + 24 * HOUR).toUTCString()}`);
    // Headers only, as the failure DSN: never the body.
    expect(dsn).toContain('Subject: results');
    expect(dsn).not.toContain('private');
  });

  it('several recipients crossing the threshold at one attempt share one DSN; a recipient already warned is left out', async () => {
    const { engine, enqueued, bodies } = engineWith(deferAt450(), [MX], undefined, { delayWarning: '4h' });
    const job = aged([{ address: 'a@example.test' }, { address: 'b@example.test' }, { address: 'c@example.test', delayWarnedAt: NOW - HOUR }], 5 * HOUR);
    const result = await engine.deliverJob(job, run);
    expect(enqueued).toHaveLength(1);
    expect(bodies[0]).toContain('Final-Recipient: rfc822; a@example.test');
    expect(bodies[0]).toContain('Final-Recipient: rfc822; b@example.test');
    expect(bodies[0]).not.toContain('c@example.test>');
    expect(deliveryStatus(bodies[0]!)).not.toContain('c@example.test');
    expect(result.recipients.map((r) => [r.address, r.delayWarnedAt])).toEqual([
      ['a@example.test', NOW],
      ['b@example.test', NOW],
      ['c@example.test', undefined],
    ]);
  });

  it('no delayed DSN before the threshold, but the next attempt is moved up to it instead of a whole retry step later', async () => {
    const { engine, enqueued } = engineWith(deferAt450(), [MX], undefined, { delayWarning: '4h', retrySchedule: ['2h'] });
    const result = await engine.deliverJob(aged([{ address: 'a@example.test' }], 4 * HOUR - 10_000), run);
    expect(enqueued).toHaveLength(0);
    expect(result.recipients[0]!.delayWarnedAt).toBeUndefined();
    expect(result.retryAt).toBe(NOW + 10_000);
  });

  it('NOTIFY=NEVER, NOTIFY without DELAY, the null sender and delayWarning null: no delayed DSN and no earlier attempt', async () => {
    for (const [recipients, message, delivery] of [
      [[{ address: 'a@example.test', notify: ['NEVER'] }], {}, { delayWarning: '4h' }],
      [[{ address: 'a@example.test', notify: ['FAILURE', 'SUCCESS'] }], {}, { delayWarning: '4h' }],
      [[{ address: 'a@example.test' }], { from: '' }, { delayWarning: '4h' }],
      [[{ address: 'a@example.test' }], {}, { delayWarning: null }],
      [[{ address: 'a@example.test' }], {}, { delayWarning: 0 }],
    ] as Array<[Rcpt[], Partial<ClaimedJob['message']>, Record<string, unknown>]>) {
      const { engine, enqueued } = engineWith(deferAt450(2), [MX], undefined, { ...delivery, retrySchedule: ['2h'] });
      const late = await engine.deliverJob(aged(recipients, 5 * HOUR, message), run);
      expect(late.recipients[0]!.delayWarnedAt).toBeUndefined();
      expect(enqueued).toHaveLength(0);
      const early = await engine.deliverJob(aged(recipients, 4 * HOUR - 10_000, message), run);
      expect(early.retryAt).toBeGreaterThanOrEqual(NOW + 2 * HOUR);
      await engine.close();
    }
  });

  it('a shutdown mid-attempt sends no warning', async () => {
    const controller = new AbortController();
    const connector = new FakeConnector({ [MX]: ['compliant'] }, { [MX]: [(input) => (controller.abort(), everyone('deferred', '450 4.2.1 busy')(input))] });
    const { engine, enqueued } = engineWith(connector, [MX], undefined, { delayWarning: '4h' });
    const result = await engine.deliverJob(aged([{ address: 'a@example.test' }], 5 * HOUR), controller.signal);
    expect(result.recipients[0]!.delayWarnedAt).toBeUndefined();
    expect(enqueued).toHaveLength(0);
  });

  it('NOTIFY=SUCCESS to an MX without DSN: a relayed DSN with the MX reply; a NOTIFY without SUCCESS gets none', async () => {
    const connector = new FakeConnector({ [MX]: ['compliant'] }, { [MX]: [everyone('delivered', '250 2.0.0 queued as 42')] });
    const { engine, enqueued, bodies } = engineWith(connector, [MX]);
    const result = await engine.deliverJob(aged([{ address: 'a@example.test', notify: ['SUCCESS'], orcpt: 'rfc822;a@example.test' }, { address: 'b@example.test' }], 0), run);
    expect(outcomes(result)).toEqual({ 'a@example.test': ['delivered', 'delivered'], 'b@example.test': ['delivered', 'delivered'] });
    expect(enqueued).toEqual([expect.objectContaining({ from: '', recipients: [{ address: 'clinic@sender.test' }] })]);
    const status = deliveryStatus(bodies[0]!);
    expect(bodies[0]).toMatch(/^Subject: Successful Mail Delivery Report/m);
    expect(status).toContain('Final-Recipient: rfc822; a@example.test');
    expect(status).toContain('Original-Recipient: rfc822; a@example.test');
    expect(status).toContain('Action: relayed');
    expect(status).toContain('Status: 2.0.0');
    expect(status).toContain('Remote-MTA: dns; mx1.example.test');
    expect(status).toContain('Diagnostic-Code: smtp; 250 2.0.0 queued as 42');
    expect(status).not.toContain('b@example.test');
    expect(bodies[0]).not.toContain('private');
  });

  it('NOTIFY=SUCCESS to an MX that offers DSN and was handed the NOTIFY: no DSN from Sealgate (the next hop reports)', async () => {
    const connector = new FakeConnector({ [MX]: ['compliant-dsn'] }, { [MX]: [everyone('delivered', '250 2.0.0 queued')] });
    const { engine, enqueued } = engineWith(connector, [MX]);
    await engine.deliverJob(aged([{ address: 'a@example.test', notify: ['SUCCESS'] }], 0), run);
    expect(connector.sends[0]!.dsn).toMatchObject({ notify: ['SUCCESS'] });
    expect(enqueued).toHaveLength(0);
  });

  it('NOTIFY=SUCCESS beside a recipient with another NOTIFY: the MX could not be handed it, so Sealgate reports relayed', async () => {
    const connector = new FakeConnector({ [MX]: ['compliant-dsn'] }, { [MX]: [everyone('delivered', '250 2.0.0 queued')] });
    const { engine, bodies } = engineWith(connector, [MX]);
    await engine.deliverJob(
      aged(
        [
          { address: 'a@example.test', notify: ['SUCCESS'] },
          { address: 'b@example.test', notify: ['NEVER'] },
        ],
        0,
      ),
      run,
    );
    expect(connector.sends[0]!.dsn?.notify).toBeUndefined();
    expect(bodies).toHaveLength(1);
    expect(deliveryStatus(bodies[0]!)).toContain('Action: relayed');
    expect(deliveryStatus(bodies[0]!)).not.toContain('b@example.test');
  });

  it('NOTIFY=SUCCESS for a recipient diverted to the portal: no DSN (the portal is no delivery)', async () => {
    const connector = new FakeConnector({ [MX]: [{ fail: 'non-compliant', code: 'starttls-not-offered' }] });
    const { engine, enqueued } = engineWith(connector, [MX]);
    const result = await engine.deliverJob(aged([{ address: 'a@example.test', notify: ['SUCCESS'] }], 0), run);
    expect(result.recipients[0]!.outcome).toBe('diverted');
    expect(enqueued).toHaveLength(0);
  });

  it('NOTIFY=NEVER or SUCCESS alone: a bounced recipient gets no failure DSN', async () => {
    const connector = new FakeConnector({ [MX]: ['compliant'] }, { [MX]: [everyone('bounced', '550 5.1.1 no such user')] });
    const { engine, enqueued } = engineWith(connector, [MX]);
    const result = await engine.deliverJob(
      aged(
        [
          { address: 'a@example.test', notify: ['NEVER'] },
          { address: 'b@example.test', notify: ['SUCCESS'] },
        ],
        0,
      ),
      run,
    );
    expect(result.recipients.map((r) => r.outcome)).toEqual(['bounced', 'bounced']);
    expect(enqueued).toHaveLength(0);
  });
});

describe('DeliveryEngine after a reload (reconfigure)', () => {
  const reloaded = (raw: Record<string, unknown>) => parseConfig({ hostname: 'relay.test', listeners: [{ name: 'submission', port: 0, tls: 'starttls', auth: 'required' }], ...raw }, {}, '/tmp');
  const policyFor = (hosts: string[]) => {
    const planDelivery = jest.fn(async () => plan(hosts));
    return { planDelivery, policy: { planner: { planDelivery, planOpportunistic: planDelivery }, sessionOptions: {} } as unknown as PolicyRuntime };
  };

  it('a job in flight finishes under the config and policy it started with; the next job takes the new ones', async () => {
    const next = policyFor(['mx2.example.test']);
    const connector = new FakeConnector(
      { 'mx1.example.test': ['compliant'], 'mx2.example.test': ['compliant'] },
      {
        'mx1.example.test': [
          (input) => {
            // The reload lands while this transaction is on the wire.
            engine.reconfigure(reloaded({ delivery: { retrySchedule: ['5m'] } }), next.policy);
            return everyone('deferred', '451 4.3.0 try later')(input);
          },
        ],
        'mx2.example.test': [everyone('deferred', '451 4.3.0 try later')],
      },
    );
    const { engine } = engineWith(connector, ['mx1.example.test']);
    const first = await engine.deliverJob(claimed(['a@example.test']), run);
    // The default schedule starts at 1 minute (plus up to 10% jitter): the reloaded 5 minutes is not this job's.
    expect(first.retryAt).toBeGreaterThanOrEqual(NOW + 60_000);
    expect(first.retryAt).toBeLessThanOrEqual(NOW + 66_000);
    expect(next.planDelivery).not.toHaveBeenCalled();

    const second = await engine.deliverJob(claimed(['a@example.test']), run);
    expect(next.planDelivery).toHaveBeenCalledWith(DOMAIN);
    expect(connector.sends.map((s) => s.host)).toEqual(['mx1.example.test', 'mx2.example.test']);
    expect(second.retryAt).toBeGreaterThanOrEqual(NOW + 300_000);
    expect(second.retryAt).toBeLessThanOrEqual(NOW + 330_000);
  });

  it('a new policy retires the pooled MX connections (negotiated under the old profile); a reload that leaves it keeps them', async () => {
    const connector = new FakeConnector(
      { 'mx1.example.test': ['compliant', 'compliant'] },
      { 'mx1.example.test': [everyone('delivered', '250 ok'), everyone('delivered', '250 ok'), everyone('delivered', '250 ok')] },
    );
    const { engine } = engineWith(connector, ['mx1.example.test']);
    await engine.deliverJob(claimed(['a@example.test']), run);
    expect(connector.closed).toHaveLength(0);

    // Same policy, other settings: the pooled connection is reused.
    const samePolicy = (engine as unknown as { runtime: { policy: PolicyRuntime } }).runtime.policy;
    engine.reconfigure(reloaded({ delivery: { retrySchedule: ['5m'] } }), samePolicy);
    await engine.deliverJob(claimed(['a@example.test']), run);
    expect(connector.connects).toHaveLength(1);

    engine.reconfigure(reloaded({}), policyFor(['mx1.example.test']).policy);
    await new Promise((resolve) => setImmediate(resolve));
    expect(connector.closed).toHaveLength(1);
    await engine.deliverJob(claimed(['a@example.test']), run);
    expect(connector.connects).toHaveLength(2);
    await engine.close();
  });
});

describe('DeliveryEngine: a DSN written by the store though the store answered unavailable', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-dsn-once-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('is queued once: the retry carries the same id and finds it, and dsn-queued is logged once with that id', async () => {
    const real = new FileStore({ path: path.join(dir, 'queue'), keepFinished: 3_600_000, logger: silentLogger() });
    await real.open();
    // Its first enqueue lands, then the reply is lost (Redis killed after it ran and fsynced the write).
    let enqueues = 0;
    const store = new Proxy(real, {
      get(target, name) {
        if (name === 'enqueue') {
          return async (...args: Parameters<Store['enqueue']>) => {
            const record = await target.enqueue(...args);
            if (++enqueues === 1) throw new StoreUnavailableError('Redis queue at 127.0.0.1:6379 is unreachable (Connection is closed.)');
            return record;
          };
        }
        const value: unknown = Reflect.get(target, name, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    try {
      const original = await real.enqueue(
        { from: 'clinic@sender.test', recipients: [{ address: 'a@example.test' }], params: {}, client: { ip: '127.0.0.1', listener: 'submission' }, receivedAt: NOW },
        Readable.from([Buffer.from('Subject: results\r\n\r\nprivate\r\n')]),
      );
      const [job] = await real.claimDue('w1', 1, 60_000, NOW);
      const connector = new FakeConnector({ 'mx1.example.test': ['compliant'] }, { 'mx1.example.test': [everyone('bounced', '550 5.1.1 no such user')] });
      const { engine } = engineWith(connector, ['mx1.example.test'], undefined, {}, { store, logger });
      const result = await engine.deliverJob(job!, run);
      await engine.close();
      expect(outcomes(result)).toEqual({ 'a@example.test': ['bounced', 'rcpt-550'] });
      expect(enqueues).toBe(2);
      const dsns = (await real.listMessages()).filter((m) => m.from === '');
      expect(dsns.map((m) => m.jobs.flatMap((j) => j.recipients.map((r) => r.address)))).toEqual([['clinic@sender.test']]);
      expect(lines.filter((l) => l.event === 'dsn-retry')).toHaveLength(1);
      expect(lines.filter((l) => l.event === 'dsn-queued')).toEqual([expect.objectContaining({ queueId: original.id, dsnQueueId: dsns[0]!.id })]);
    } finally {
      await real.close();
    }
  });
});
