import { createHash, X509Certificate } from 'node:crypto';
import { Readable } from 'node:stream';
import { SMTPServer } from 'smtp-server';
import { parseConfig } from '../../src/config/load';
import type { DeliveryEvidence } from '../../src/evidence/delivery';
import { silentLogger } from '../../src/log/logger';
import { checkDomain } from '../../src/outbound/check';
import { DeliveryEngine, type DeliveryEngineDeps } from '../../src/outbound/engine';
import { createPolicyRuntime, DnsError, type DnsResolver, type PolicyRuntime } from '../../src/policy';
import type { TlsaRecord } from '../../src/policy/dane/types';
import type { ClaimedJob, Store } from '../../src/store/types';
import { daneCerts, der, type DaneCerts } from '../policy/dane/certs';
import { freePort } from '../support/ports';

/**
 * DANE with real TLS sessions, without DNSSEC: SMTP servers on loopback with self-signed and private-CA
 * certificates, and a fake validating resolver object that says which answers are secure. Both `sealgate check`
 * (checkDomain) and the delivery engine with the real SMTP client run over the same plan and judge.
 */

interface Mx {
  name: string;
  address: string;
  /** PEM chain the server sends (leaf first) and its key. */
  cert: string;
  key: string;
  ciphers?: string;
}

type TlsaAnswer = TlsaRecord[] | 'temporary' | 'nodata';

let c: DaneCerts;
let port: number;
const servers: SMTPServer[] = [];
const received: Array<{ mx: string; rcpt: string[]; servername: string | null }> = [];
const dns = { mx: new Map<string, string[]>(), addresses: new Map<string, string>(), tlsa: new Map<string, TlsaAnswer>() };

function spkiSha256(pem: string): string {
  return createHash('sha256')
    .update(new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}
const ee = (pem: string): TlsaRecord => ({ usage: 3, selector: 1, matchingType: 1, data: spkiSha256(pem) });
const ta = (pem: string): TlsaRecord => ({ usage: 2, selector: 0, matchingType: 1, data: createHash('sha256').update(der(pem)).digest('hex') });

async function startMx(mx: Mx): Promise<void> {
  const server = new SMTPServer({
    name: mx.name,
    key: mx.key,
    cert: mx.cert,
    ...(mx.ciphers ? { ciphers: mx.ciphers } : {}),
    logger: false,
    authOptional: true,
    disabledCommands: ['AUTH'],
    disableReverseLookup: true,
    closeTimeout: 100,
    onSecure(socket, session, callback) {
      (session as unknown as { sni: string | null }).sni = (socket as unknown as { servername?: string }).servername ?? null;
      callback();
    },
    onData(stream, session, callback) {
      stream.resume();
      stream.on('end', () => {
        received.push({ mx: mx.name, rcpt: session.envelope.rcptTo.map((r) => r.address), servername: (session as unknown as { sni: string | null }).sni });
        callback(null, `2.0.0 Ok: queued by ${mx.name}`);
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(port, mx.address, resolve));
  servers.push(server);
  dns.addresses.set(mx.name, mx.address);
}

async function resolveMxSecure(name: string) {
  const hosts = dns.mx.get(name);
  if (!hosts) throw new DnsError('nxdomain', `MX ${name}`, 'ENOTFOUND');
  return { value: hosts.map((exchange, i) => ({ exchange, priority: 10 * (i + 1) })), secure: true };
}
async function resolveAddressesSecure(name: string) {
  const address = dns.addresses.get(name);
  if (!address) throw new DnsError('nxdomain', `A ${name}`, 'ENOTFOUND');
  return { value: [address], secure: true, canonicalName: name };
}

/** A validating resolver in memory: everything secure, TLSA as the test sets it. */
const resolver = {
  validating: true,
  lookup: () => undefined,
  resolveMxSecure,
  resolveAddressesSecure,
  resolveMx: async (name: string) => (await resolveMxSecure(name)).value,
  resolveAddresses: async (name: string) => (await resolveAddressesSecure(name)).value,
  async resolveTlsa(name: string) {
    const answer = dns.tlsa.get(name) ?? 'nodata';
    if (answer === 'temporary') throw new DnsError('temporary', `TLSA ${name}`, 'ESERVFAIL');
    if (answer === 'nodata') throw new DnsError('nodata', `TLSA ${name}`, 'ENODATA');
    return { value: answer, secure: true };
  },
  async resolveTxt(name: string): Promise<string[]> {
    throw new DnsError('nxdomain', `TXT ${name}`, 'ENOTFOUND');
  },
  resolve4: async (name: string) => (await resolveAddressesSecure(name)).value,
  async resolve6(name: string): Promise<string[]> {
    throw new DnsError('nodata', `AAAA ${name}`, 'ENODATA');
  },
} as unknown as DnsResolver;

function runtime(): PolicyRuntime {
  const config = parseConfig(
    {
      hostname: 'relay.test',
      listeners: [{ name: 'submission', port: 0, tls: 'starttls', auth: 'required' }],
      outbound: { port, ipv6: false, connectTimeout: '3s' },
      mtaSts: { enabled: false },
      // Level verify everywhere: DANE must decide on its own, whatever WebPKI says.
      domains: Object.fromEntries([...dns.mx.keys()].map((domain) => [domain, { level: 'verify' }])),
    },
    {},
    '/tmp',
  );
  return createPolicyRuntime(config, { resolver });
}

function claimed(domain: string): ClaimedJob {
  const now = Date.now();
  return {
    job: {
      id: `m1/${domain}`,
      messageId: 'm1',
      domain,
      state: 'queued',
      recipients: [{ address: `patient@${domain}`, state: 'pending', history: [] }],
      dueAt: now,
      attempts: 0,
      createdAt: now,
      updatedAt: now,
    },
    message: { id: 'm1', from: 'clinic@sender.test', size: 40, receivedAt: now, params: {}, client: { ip: '127.0.0.1', listener: 'submission' }, headers: {} },
  };
}

async function deliver(domain: string): Promise<DeliveryEvidence & { outcome: string }> {
  const policy = runtime();
  const config = parseConfig({ hostname: 'relay.test', listeners: [{ name: 'submission', port: 0, tls: 'starttls', auth: 'required' }], delivery: { retrySchedule: ['1m'] } }, {}, '/tmp');
  const store = { openBody: async () => Readable.from([Buffer.from('Subject: test\r\n\r\nbody\r\n')]), enqueue: async () => ({ id: 'dsn' }) } as unknown as Store;
  const evidence: DeliveryEngineDeps['evidence'] = { recordOutcomes: async () => undefined };
  const engine = new DeliveryEngine({ config, store, policy, logger: silentLogger(), evidence });
  try {
    const result = await engine.deliverJob(claimed(domain), new AbortController().signal);
    return result.recipients[0]!.evidence as DeliveryEvidence & { outcome: string };
  } finally {
    await engine.close();
  }
}

beforeAll(async () => {
  c = await daneCerts();
  port = await freePort();
  const selfSigned = { cert: c.selfSigned.cert, key: c.selfSigned.key };
  // A leaf for mx.dane.test signed by the root, sent with the root (DANE-TA needs the anchor in the chain).
  const taChain = { cert: `${c.leaf.cert.trim()}\n${c.root.cert.trim()}\n`, key: c.leaf.key };
  const wrongName = { cert: `${c.wrongNameLeaf.cert.trim()}\n${c.root.cert.trim()}\n`, key: c.wrongNameLeaf.key };
  await startMx({ name: 'mx.ee.test', address: '127.0.0.31', ...selfSigned });
  await startMx({ name: 'mx1.ee-mismatch.test', address: '127.0.0.32', ...selfSigned });
  await startMx({ name: 'mx2.ee-mismatch.test', address: '127.0.0.33', ...selfSigned });
  await startMx({ name: 'mx.dane.test', address: '127.0.0.34', ...taChain });
  await startMx({ name: 'mx.ta-wrong.test', address: '127.0.0.35', ...wrongName });
  await startMx({ name: 'mx.pkix.test', address: '127.0.0.36', ...selfSigned });
  await startMx({ name: 'mx.bogus.test', address: '127.0.0.37', ...selfSigned });
  await startMx({ name: 'mx.chacha.test', address: '127.0.0.38', ...selfSigned, ciphers: 'TLS_CHACHA20_POLY1305_SHA256:ECDHE-ECDSA-CHACHA20-POLY1305' });
  await startMx({ name: 'mx.notlsa.test', address: '127.0.0.39', ...selfSigned });

  dns.mx.set('ee.test', ['mx.ee.test']);
  dns.tlsa.set('_25._tcp.mx.ee.test', [ee(c.selfSigned.cert)]);
  dns.mx.set('ee-mismatch.test', ['mx1.ee-mismatch.test', 'mx2.ee-mismatch.test']);
  dns.tlsa.set('_25._tcp.mx1.ee-mismatch.test', [ee(c.leaf.cert)]);
  dns.tlsa.set('_25._tcp.mx2.ee-mismatch.test', [ee(c.selfSigned.cert)]);
  dns.mx.set('ee-none.test', ['mx1.ee-mismatch.test']);
  dns.mx.set('dane.test', ['mx.dane.test']);
  dns.tlsa.set('_25._tcp.mx.dane.test', [ta(c.root.cert)]);
  dns.mx.set('ta-wrong.test', ['mx.ta-wrong.test']);
  dns.tlsa.set('_25._tcp.mx.ta-wrong.test', [ta(c.root.cert)]);
  dns.mx.set('pkix.test', ['mx.pkix.test']);
  dns.tlsa.set('_25._tcp.mx.pkix.test', [{ ...ee(c.leaf.cert), usage: 1 }]);
  dns.mx.set('bogus.test', ['mx.bogus.test']);
  dns.tlsa.set('_25._tcp.mx.bogus.test', 'temporary');
  dns.mx.set('chacha.test', ['mx.chacha.test']);
  dns.tlsa.set('_25._tcp.mx.chacha.test', [ee(c.selfSigned.cert)]);
  dns.mx.set('notlsa.test', ['mx.notlsa.test']);
}, 60_000);

afterAll(async () => {
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
});

describe('DANE over real TLS sessions (fake validating resolver)', () => {
  it('DANE-EE 3 1 1 with a self-signed certificate at level verify: check says deliver, delivery delivers with SNI = MX host', async () => {
    const report = await checkDomain('ee.test', runtime(), { diagnose: false });
    expect(report).toMatchObject({ verdict: 'deliver', via: 'mx.ee.test', daneEnabled: true });
    expect(report.mx[0]!.dane).toEqual({
      state: 'secure-tlsa',
      records: [ee(c.selfSigned.cert)],
      match: { ...ee(c.selfSigned.cert), depth: 0 },
      reason: expect.stringContaining('matched 3 1 1 at depth 0'),
    });
    expect(report.mx[0]!.certificate).toMatchObject({ trusted: false });

    received.length = 0;
    const evidence = await deliver('ee.test');
    expect(evidence).toMatchObject({ outcome: 'delivered', mx: 'mx.ee.test', policy: { level: 'verify', dane: 'secure-tlsa' } });
    expect(evidence.mxAttempts).toEqual([expect.objectContaining({ mx: 'mx.ee.test', class: 'ok', dane: { state: 'secure-tlsa', result: 'match', match: { ...ee(c.selfSigned.cert), depth: 0 } } })]);
    expect(received).toEqual([{ mx: 'mx.ee.test', rcpt: ['patient@ee.test'], servername: 'mx.ee.test' }]);
  });

  it('DANE-EE mismatch: that MX is not used, the next one (matching) is', async () => {
    const report = await checkDomain('ee-mismatch.test', runtime(), { diagnose: false });
    expect(report).toMatchObject({ verdict: 'deliver', via: 'mx2.ee-mismatch.test' });
    expect(report.mx[0]).toMatchObject({ compliant: false, code: 'dane-no-match', dane: { state: 'secure-tlsa', match: null } });

    received.length = 0;
    const evidence = await deliver('ee-mismatch.test');
    expect(evidence).toMatchObject({ outcome: 'delivered', mx: 'mx2.ee-mismatch.test' });
    expect(evidence.mxAttempts.map((a) => [a.mx, a.code, a.dane?.result])).toEqual([
      ['mx1.ee-mismatch.test', 'dane-no-match', 'dane-no-match'],
      ['mx2.ee-mismatch.test', 'ok', 'match'],
    ]);
    expect(received.map((r) => r.mx)).toEqual(['mx2.ee-mismatch.test']);
  });

  it('DANE-EE mismatch and no other MX: diverted, nothing sent', async () => {
    received.length = 0;
    expect(await checkDomain('ee-none.test', runtime(), { diagnose: false })).toMatchObject({ verdict: 'divert', code: 'dane-no-match' });
    expect(await deliver('ee-none.test')).toMatchObject({ outcome: 'diverted', reason: 'dane-no-match' });
    expect(received).toEqual([]);
  });

  it('DANE-TA 2 0 1 with the right name delivers (depth 1); with the wrong name it is diverted', async () => {
    const report = await checkDomain('dane.test', runtime(), { diagnose: false });
    expect(report).toMatchObject({ verdict: 'deliver', mx: [{ dane: { match: { usage: 2, selector: 0, matchingType: 1, depth: 1 } } }] });
    expect(await deliver('dane.test')).toMatchObject({ outcome: 'delivered', mx: 'mx.dane.test' });

    expect(await checkDomain('ta-wrong.test', runtime(), { diagnose: false })).toMatchObject({ verdict: 'divert', code: 'dane-ta-name-mismatch' });
    expect(await deliver('ta-wrong.test')).toMatchObject({ outcome: 'diverted', reason: 'dane-ta-name-mismatch' });
  });

  it('only usage-1 records: TLS mandatory, certificate not checked (even at level verify)', async () => {
    const report = await checkDomain('pkix.test', runtime(), { diagnose: false });
    expect(report).toMatchObject({ verdict: 'deliver', mx: [{ dane: { state: 'secure-tlsa', match: null } }] });
    const evidence = await deliver('pkix.test');
    expect(evidence).toMatchObject({ outcome: 'delivered' });
    expect(evidence.mxAttempts[0]!.dane).toEqual({ state: 'secure-tlsa', match: null, result: 'no-usable-records' });
  });

  it('bogus TLSA lookup: deferred, the MX never contacted', async () => {
    received.length = 0;
    expect(await checkDomain('bogus.test', runtime(), { diagnose: false })).toMatchObject({ verdict: 'defer', code: 'dane-tlsa-bogus' });
    expect(await deliver('bogus.test')).toMatchObject({ outcome: 'deferred', reason: 'dane-tlsa-bogus' });
    expect(received).toEqual([]);
  });

  it('DANE matches but the server offers only suites outside the NIST profile: diverted', async () => {
    expect(await checkDomain('chacha.test', runtime(), { diagnose: false })).toMatchObject({ verdict: 'divert' });
    const evidence = await deliver('chacha.test');
    expect(evidence).toMatchObject({ outcome: 'diverted' });
    expect(evidence.mxAttempts[0]).toMatchObject({ class: 'non-compliant', dane: { state: 'secure-tlsa' } });
  });

  it('secure, no TLSA: the level decides as before (verify refuses the self-signed certificate)', async () => {
    const report = await checkDomain('notlsa.test', runtime(), { diagnose: false });
    expect(report).toMatchObject({ verdict: 'divert', code: 'certificate-untrusted', mx: [{ dane: { state: 'no-tlsa', match: null } }] });
    const evidence = await deliver('notlsa.test');
    expect(evidence).toMatchObject({ outcome: 'diverted', reason: 'certificate-untrusted', policy: { dane: null } });
    expect(evidence.mxAttempts[0]!.dane).toEqual({ state: 'no-tlsa', match: null, result: 'not-applicable' });
  });
});
