/**
 * The test world: one authoritative DNS server, one SMTP server per MX host and one MTA-STS
 * HTTPS server, all on loopback addresses, started together from a declarative spec.
 *
 *   const world = await startWorld(standardScenarios());
 *   // relay config: dns.servers = [world.dnsServer], outbound port = world.smtpPort,
 *   //               MTA-STS fetch port = world.mtaStsPort, extra CA file = world.caFile
 *   await world.mx('mx1.tls13.test').waitFor((m) => m.rcptTo.includes('a@tls13.test'));
 *   await world.stop();
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { testCa } from './ca';
import { startDnsServer, type DnsFailure, type DnsServer } from './dns-server';
import { startMtaStsServer, type MtaStsResponse, type MtaStsServer } from './mta-sts-server';
import { startMxServer, type MxBehaviour, type MxReplyBehaviour, type MxServer, type MxTlsBehaviour, type ReceivedMessage } from './mx-server';
import { startTlsRptEndpoint, type TlsRptEndpoint } from './tlsrpt-endpoint';

export type { DnsServer, DnsFailure, DnsRecordType, DnsRecordDataMap, DnsQueryLogEntry } from './dns-server';
export type { MxServer, MxBehaviour, MxReplyBehaviour, MxTlsBehaviour, MxTlsFacts, ReceivedMessage, MxEvent } from './mx-server';
export type { MtaStsServer, MtaStsResponse, MtaStsPolicy, MtaStsRequest } from './mta-sts-server';
export type { TlsRptEndpoint, TlsRptPost } from './tlsrpt-endpoint';
export { renderPolicy } from './mta-sts-server';
export { testCa, leafCertificate, WRONG_NAME } from './ca';
export type { TestCa, LeafKind, CertPair } from './ca';

export interface WorldMxSpec extends MxReplyBehaviour {
  /** MX host name (gets an A record on its own 127.0.0.x address). */
  host: string;
  tls: MxTlsBehaviour;
  /** Advertise REQUIRETLS after STARTTLS (RFC 8689); received messages record their MAIL FROM parameters either way. */
  requireTls?: boolean;
  /** MX preference (default 10, 20, 30… in list order). */
  preference?: number;
  /** Send the issuing test-CA root after the leaf (DANE-TA scenarios; see MxBehaviour.chain). */
  chain?: boolean;
}

export interface WorldMtaStsSpec {
  mode: 'enforce' | 'testing' | 'none';
  /** `mx:` patterns of the policy. */
  mx: string[];
  /** max_age (default 86400). */
  maxAge?: number;
  /** id in the `_mta-sts` TXT record (default '20261127T000000'). */
  id?: string;
  /** Override the `_mta-sts` TXT record(s) verbatim (e.g. two records, or a bad version). */
  txt?: string[];
  /** How the HTTPS server answers (status, redirect, certificate…); the policy comes from the fields above. */
  response?: Omit<MtaStsResponse, 'policy'>;
}

export interface DomainSpec {
  /** MX hosts, each served by its own SMTP server. */
  mx?: WorldMxSpec[];
  /** Publish a null MX (`0 .`, RFC 7505) and nothing else for mail. */
  nullMx?: boolean;
  /** No MX record: the domain's own A record points at an SMTP server (host = the domain). */
  implicitMx?: Omit<WorldMxSpec, 'host' | 'preference'>;
  mtaSts?: WorldMtaStsSpec;
  /** Make every query for the domain name itself fail this way. */
  dnsFailure?: DnsFailure;
  /**
   * Publish `_smtp._tls.<domain>` (RFC 8460): `rua` names the world's sinks (`mailto` = TLSRPT_MAILBOX, `https` =
   * the world's TLS-RPT endpoint at /v1/<domain>), or `txt` gives the TXT record(s) verbatim.
   */
  tlsRpt?: { rua: Array<'mailto' | 'https'> } | { txt: string[] };
}

/** Domain name → what exists for it. */
export type WorldSpec = Record<string, DomainSpec>;

/** Raw config fragment (see src/config/schema.ts) aiming the relay at the world. */
export interface WorldRelayConfig {
  dns: { servers: string[] };
  outbound: { port: number; extraCaFile: string };
  mtaSts: { port: number; extraCaFile: string };
}

export interface World {
  /** 'ip:port' of the DNS server (relay `dns.servers`, or `Resolver.setServers([world.dnsServer])`). */
  dnsServer: string;
  dns: DnsServer;
  /** The one port every MX server listens on (each on its own address): the relay's outbound port. */
  smtpPort: number;
  /** The port of the MTA-STS HTTPS server (instead of 443). */
  mtaStsPort: number;
  mtaSts: MtaStsServer;
  /** PEM of the test CA roots, and the same written to a temp file (e.g. NODE_EXTRA_CA_CERTS, config extra CA). */
  caPem: string;
  caFile: string;
  /** The domains of the spec. */
  domains: string[];
  /** The SMTP server for an MX host (throws for an unknown host). */
  mx(host: string): MxServer;
  mxServers: MxServer[];
  /** The loopback address assigned to a host name (MX host, mta-sts.<domain>, implicit-MX domain). */
  addressOf(host: string): string;
  /** The MX server of a domain's first MX (or its implicit MX): e.g. the sender's mailbox where DSNs arrive. */
  mailbox(domain: string): MxServer;
  /** Every message received by any MX, oldest first. */
  received(): ReceivedMessage[];
  /** Clear every recording (MX messages and events, DNS query log, MTA-STS request log) between tests. */
  clearRecords(): void;
  /** The HTTPS endpoint of `https:` TLS-RPT destinations (TLSRPT_HOST on 127.0.0.4); null when no domain asks for one. */
  tlsRpt: TlsRptEndpoint | null;
  /** The relay config keys that point it at this world (merge into a raw config before parseConfig). */
  relayConfig(): WorldRelayConfig;
  /** Close every server and remove temp files. Safe to call twice. */
  stop(): Promise<void>;
}

/** Fixed loopback addresses; MX hosts get 127.0.0.10 onwards. */
const DNS_ADDRESS = '127.0.0.2';
const MTA_STS_ADDRESS = '127.0.0.3';
const TLSRPT_ADDRESS = '127.0.0.4';
/** Host name of the world's TLS-RPT HTTPS endpoint. */
export const TLSRPT_HOST = 'tlsrpt.rpt-sink.test';
/** The mailbox `mailto:` TLS-RPT destinations of the world point at (its MX is mx1.rpt-sink.test). */
export const TLSRPT_MAILBOX = 'tlsrpt@rpt-sink.test';
const FIRST_MX_OCTET = 10;
/** Attempts at finding one port free on every MX address. */
const SHARED_PORT_ATTEMPTS = 10;

interface PlannedMx {
  host: string;
  address: string;
  behaviour: MxBehaviour;
}

export async function startWorld(spec: WorldSpec): Promise<World> {
  const caPem = (await testCa()).caPem;
  const tempDir = await mkdtemp(path.join(os.tmpdir(), 'sealgate-world-'));
  const caFile = path.join(tempDir, 'test-ca.pem');
  await writeFile(caFile, caPem);

  const cleanup: (() => Promise<void>)[] = [() => rm(tempDir, { recursive: true, force: true })];
  const stopAll = async (): Promise<void> => {
    await Promise.allSettled(
      cleanup
        .splice(0)
        .reverse()
        .map((step) => step()),
    );
  };

  try {
    const planned = planMxHosts(spec);
    const wantsTlsRpt = Object.values(spec).some((domain) => domain.tlsRpt);
    const [dns, mtaSts, mxServers, tlsRpt] = await Promise.all([
      startDnsServer({ host: DNS_ADDRESS }),
      startMtaStsServer({ host: MTA_STS_ADDRESS }),
      startMxServersOnSharedPort(planned),
      wantsTlsRpt ? startTlsRptEndpoint({ name: TLSRPT_HOST, host: TLSRPT_ADDRESS }) : null,
    ]);
    cleanup.push(
      () => dns.close(),
      () => mtaSts.close(),
      ...mxServers.map((server) => () => server.close()),
      ...(tlsRpt ? [() => tlsRpt.close()] : []),
    );

    const addresses = new Map<string, string>(planned.map((mx) => [mx.host, mx.address]));
    writeRecords(spec, dns, mtaSts, addresses, tlsRpt);

    const byHost = new Map(mxServers.map((server) => [server.name, server]));
    const smtpPort = mxServers[0]?.port ?? 0;
    const mxOf = (host: string): MxServer => {
      const server = byHost.get(normalize(host));
      if (!server) throw new Error(`test world has no MX host ${host} (known: ${[...byHost.keys()].join(', ')})`);
      return server;
    };
    let stopped: Promise<void> | undefined;
    return {
      dnsServer: dns.address,
      dns,
      smtpPort,
      mtaStsPort: mtaSts.port,
      mtaSts,
      caPem,
      caFile,
      domains: Object.keys(spec).map(normalize),
      mxServers,
      mx: mxOf,
      addressOf(host) {
        const address = addresses.get(normalize(host));
        if (address) return address;
        if (normalize(host).startsWith('mta-sts.')) return MTA_STS_ADDRESS;
        if (tlsRpt && normalize(host) === TLSRPT_HOST) return TLSRPT_ADDRESS;
        throw new Error(`test world has no address for ${host}`);
      },
      mailbox(domain) {
        const domainSpec = Object.entries(spec).find(([name]) => normalize(name) === normalize(domain))?.[1];
        const host = domainSpec?.mx?.[0]?.host ?? (domainSpec?.implicitMx ? domain : undefined);
        if (!host) throw new Error(`test world has no MX for domain ${domain}`);
        return mxOf(host);
      },
      clearRecords() {
        for (const server of mxServers) server.clear();
        dns.clearLog();
        mtaSts.clearLog();
        tlsRpt?.clear();
      },
      tlsRpt,
      received: () => mxServers.flatMap((server) => server.received).sort((a, b) => a.at.getTime() - b.at.getTime()),
      relayConfig: () => ({
        dns: { servers: [dns.address] },
        outbound: { port: smtpPort, extraCaFile: caFile },
        mtaSts: { port: mtaSts.port, extraCaFile: caFile },
      }),
      stop() {
        stopped ??= stopAll();
        return stopped;
      },
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

function normalize(name: string): string {
  return name.toLowerCase().replace(/\.+$/, '');
}

/** One SMTP server per distinct MX host (an implicit MX's host is the domain), each on its own address. */
function planMxHosts(spec: WorldSpec): PlannedMx[] {
  const planned = new Map<string, PlannedMx>();
  const add = (host: string, behaviour: MxBehaviour): void => {
    const key = normalize(host);
    if (planned.has(key)) return; // an MX shared by several domains keeps its first behaviour
    const index = planned.size;
    if (index >= 240 * 256) throw new Error('test world: too many MX hosts');
    const address = `127.0.${Math.floor(index / 240)}.${FIRST_MX_OCTET + (index % 240)}`;
    planned.set(key, { host: key, address, behaviour });
  };
  for (const [domain, domainSpec] of Object.entries(spec)) {
    for (const { host, preference: _preference, ...behaviour } of domainSpec.mx ?? []) add(host, behaviour);
    if (domainSpec.implicitMx) add(domain, domainSpec.implicitMx);
  }
  return [...planned.values()];
}

/**
 * Start every MX server on one port number (the relay's outbound port is a single setting):
 * the first server picks a free port on its address, the others bind the same port on theirs;
 * if one of those is taken, everything is closed and retried with a new port.
 */
async function startMxServersOnSharedPort(planned: PlannedMx[]): Promise<MxServer[]> {
  const [first, ...rest] = planned;
  if (!first) return [];
  for (let attempt = 1; ; attempt++) {
    const started: MxServer[] = [];
    try {
      const head = await startMxServer({ name: first.host, host: first.address, port: 0, ...first.behaviour });
      started.push(head);
      const others = await Promise.allSettled(rest.map((mx) => startMxServer({ name: mx.host, host: mx.address, port: head.port, ...mx.behaviour })));
      for (const result of others) if (result.status === 'fulfilled') started.push(result.value);
      const failure = others.find((result): result is PromiseRejectedResult => result.status === 'rejected');
      if (failure) throw failure.reason;
      return started;
    } catch (error) {
      await Promise.all(started.map((server) => server.close()));
      const inUse = (error as NodeJS.ErrnoException).code === 'EADDRINUSE';
      if (!inUse || attempt >= SHARED_PORT_ATTEMPTS) throw error;
    }
  }
}

function writeRecords(spec: WorldSpec, dns: DnsServer, mtaSts: MtaStsServer, addresses: Map<string, string>, tlsRpt: TlsRptEndpoint | null): void {
  const tld = (name: string): string => normalize(name).split('.').pop() ?? '';
  // Authoritative for the whole TLD of every name, so unknown names answer NXDOMAIN, never leak out.
  for (const name of [...Object.keys(spec), ...addresses.keys()]) dns.addZone(tld(name));
  for (const [host, address] of addresses) dns.set(host, 'A', [address]);
  if (tlsRpt) {
    dns.addZone(tld(TLSRPT_HOST));
    dns.set(TLSRPT_HOST, 'A', [TLSRPT_ADDRESS]);
  }

  for (const [rawDomain, domainSpec] of Object.entries(spec)) {
    const domain = normalize(rawDomain);
    if (domainSpec.nullMx) dns.set(domain, 'MX', [{ preference: 0, exchange: '.' }]);
    const mxList = domainSpec.mx ?? [];
    if (mxList.length > 0) {
      dns.set(
        domain,
        'MX',
        mxList.map((mx, index) => ({ preference: mx.preference ?? 10 * (index + 1), exchange: normalize(mx.host) })),
      );
    }
    if (domainSpec.mtaSts) {
      const { mode, mx, maxAge = 86_400, id = '20261127T000000', txt, response } = domainSpec.mtaSts;
      dns.set(`_mta-sts.${domain}`, 'TXT', txt ?? [`v=STSv1; id=${id};`]);
      dns.set(`mta-sts.${domain}`, 'A', [MTA_STS_ADDRESS]);
      mtaSts.set(domain, { ...response, policy: { mode, mx, maxAge } });
    }
    if (domainSpec.tlsRpt) {
      const rua = 'rua' in domainSpec.tlsRpt ? domainSpec.tlsRpt.rua.map((kind) => (kind === 'mailto' ? `mailto:${TLSRPT_MAILBOX}` : tlsRpt!.url(`/v1/${domain}`))) : null;
      dns.set(`_smtp._tls.${domain}`, 'TXT', rua ? [`v=TLSRPTv1; rua=${rua.join(',')}`] : (domainSpec.tlsRpt as { txt: string[] }).txt);
    }
    if (domainSpec.dnsFailure) dns.fail(domain, domainSpec.dnsFailure);
  }
}

/**
 * Domains that publish `_smtp._tls` (RFC 8460) records, for the TLS-RPT tests; merge with standardScenarios().
 * Reports by mail land at TLSRPT_MAILBOX (world.mailbox('rpt-sink.test')), by https at world.tlsRpt.
 */
export function tlsRptScenarios(): WorldSpec {
  return {
    // the mailto sink itself (deliverable, TLS 1.3)
    'rpt-sink.test': { mx: [{ host: 'mx1.rpt-sink.test', tls: 'tls13' }] },
    // deliverable, reports to both sinks
    'rpt-good.test': { mx: [{ host: 'mx1.rpt-good.test', tls: 'tls13' }], tlsRpt: { rua: ['mailto', 'https'] } },
    // no STARTTLS (starttls-not-supported), reports to both sinks
    'rpt-nostarttls.test': { mx: [{ host: 'mx1.rpt-nostarttls.test', tls: 'none' }], tlsRpt: { rua: ['mailto', 'https'] } },
    // certificate for another name (certificate-host-mismatch at level verify), reports by https only
    'rpt-wrongname.test': { mx: [{ host: 'mx1.rpt-wrongname.test', tls: 'wrong-name' }], tlsRpt: { rua: ['https'] } },
    // an invalid record (ftp: is not a TLS-RPT scheme): no report
    'rpt-badrecord.test': { mx: [{ host: 'mx1.rpt-badrecord.test', tls: 'tls13' }], tlsRpt: { txt: ['v=TLSRPTv1; rua=ftp://rpt-sink.test/reports'] } },
  };
}

/** Recipient that the rcpt550.test MX refuses with 550; any other recipient there is accepted. */
export const REJECTED_RECIPIENT = 'reject@rcpt550.test';
/** Recipient that the rcpt450.test MX defers with 450. */
export const DEFERRED_RECIPIENT = 'defer@rcpt450.test';

/**
 * The scenario domains of issues 3 and 4 (and a few more). Names are stable: tests refer to them.
 */
export function standardScenarios(): WorldSpec {
  return {
    // deliverable
    'tls13.test': { mx: [{ host: 'mx1.tls13.test', tls: 'tls13' }] },
    'tls12.test': { mx: [{ host: 'mx1.tls12.test', tls: 'tls12-gcm' }] },
    // non-compliant TLS
    'tls11.test': { mx: [{ host: 'mx1.tls11.test', tls: 'tls11' }] },
    'nostarttls.test': { mx: [{ host: 'mx1.nostarttls.test', tls: 'none' }] },
    'chacha.test': { mx: [{ host: 'mx1.chacha.test', tls: 'chacha20' }] },
    // certificate problems (deliverable at level `encrypt`, not at `verify`)
    'selfsigned.test': { mx: [{ host: 'mx1.selfsigned.test', tls: 'self-signed' }] },
    'wrongname.test': { mx: [{ host: 'mx1.wrongname.test', tls: 'wrong-name' }] },
    'expired.test': { mx: [{ host: 'mx1.expired.test', tls: 'expired' }] },
    'weakrsa.test': { mx: [{ host: 'mx1.weakrsa.test', tls: 'weak-rsa' }] },
    // MTA-STS
    'sts-enforce.test': {
      mx: [{ host: 'mx1.sts-enforce.test', tls: 'tls13' }],
      mtaSts: { mode: 'enforce', mx: ['*.sts-enforce.test'] },
    },
    'sts-badcert.test': {
      mx: [{ host: 'mx1.sts-badcert.test', tls: 'self-signed' }],
      mtaSts: { mode: 'enforce', mx: ['mx1.sts-badcert.test'] },
    },
    'sts-mismatch.test': {
      mx: [{ host: 'mx1.sts-mismatch.test', tls: 'tls13' }],
      mtaSts: { mode: 'enforce', mx: ['mx.elsewhere.test'] },
    },
    'sts-testing.test': {
      mx: [{ host: 'mx1.sts-testing.test', tls: 'self-signed' }],
      mtaSts: { mode: 'testing', mx: ['mx.elsewhere.test'] },
    },
    // TXT published but the policy fetch fails (404): without a cached policy, no policy applies
    'sts-fetchfail.test': {
      mx: [{ host: 'mx1.sts-fetchfail.test', tls: 'self-signed' }],
      mtaSts: { mode: 'enforce', mx: ['mx1.sts-fetchfail.test'], response: { status: 404 } },
    },
    'sts-none.test': {
      mx: [{ host: 'mx1.sts-none.test', tls: 'tls13' }],
      mtaSts: { mode: 'none', mx: ['mx1.sts-none.test'] },
    },
    // MX selection
    'secondmx.test': {
      mx: [
        { host: 'mx1.secondmx.test', tls: 'none', preference: 10 },
        { host: 'mx2.secondmx.test', tls: 'tls13', preference: 20 },
      ],
    },
    'nullmx.test': { nullMx: true },
    'implicitmx.test': { implicitMx: { tls: 'tls13' } },
    'servfail.test': { mx: [{ host: 'mx1.servfail.test', tls: 'tls13' }], dnsFailure: 'servfail' },
    'dnstimeout.test': { mx: [{ host: 'mx1.dnstimeout.test', tls: 'tls13' }], dnsFailure: 'timeout' },
    // replies
    'tempfail.test': { mx: [{ host: 'mx1.tempfail.test', tls: 'tls13', tempFailOnce: true }] },
    'rcpt550.test': { mx: [{ host: 'mx1.rcpt550.test', tls: 'tls13', rcpt5xx: [REJECTED_RECIPIENT] }] },
    'rcpt450.test': { mx: [{ host: 'mx1.rcpt450.test', tls: 'tls13', rcpt4xx: [DEFERRED_RECIPIENT] }] },
    'slow.test': { mx: [{ host: 'mx1.slow.test', tls: 'tls13', dataDelayMs: 10_000 }] },
    // the envelope sender's mailbox, where DSNs arrive
    'sender.test': { mx: [{ host: 'mx1.sender.test', tls: 'tls13' }] },
  };
}
