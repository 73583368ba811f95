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
import type { DnsFailure, DnsServer } from './dns-server';
import type { MtaStsResponse, MtaStsServer } from './mta-sts-server';
import type { MxReplyBehaviour, MxServer, MxTlsBehaviour, ReceivedMessage } from './mx-server';

export type { DnsServer, DnsFailure, DnsRecordType, DnsRecordDataMap, DnsQueryLogEntry } from './dns-server';
export type { MxServer, MxBehaviour, MxReplyBehaviour, MxTlsBehaviour, MxTlsFacts, ReceivedMessage, MxEvent } from './mx-server';
export type { MtaStsServer, MtaStsResponse, MtaStsPolicy, MtaStsRequest } from './mta-sts-server';
export { renderPolicy } from './mta-sts-server';
export { testCa, leafCertificate, WRONG_NAME } from './ca';
export type { TestCa, LeafKind, CertPair } from './ca';

export interface WorldMxSpec extends MxReplyBehaviour {
  /** MX host name (gets an A record on its own 127.0.0.x address). */
  host: string;
  tls: MxTlsBehaviour;
  /** MX preference (default 10, 20, 30… in list order). */
  preference?: number;
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
}

/** Domain name → what exists for it. */
export type WorldSpec = Record<string, DomainSpec>;

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
  /** Every message received by any MX, oldest first. */
  received(): ReceivedMessage[];
  /** Close every server and remove temp files. Safe to call twice. */
  stop(): Promise<void>;
}

export async function startWorld(spec: WorldSpec): Promise<World> {
  void spec;
  throw new Error('not implemented yet');
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
    // replies
    'tempfail.test': { mx: [{ host: 'mx1.tempfail.test', tls: 'tls13', tempFailOnce: true }] },
    'rcpt550.test': { mx: [{ host: 'mx1.rcpt550.test', tls: 'tls13', rcpt5xx: [REJECTED_RECIPIENT] }] },
    'rcpt450.test': { mx: [{ host: 'mx1.rcpt450.test', tls: 'tls13', rcpt4xx: [DEFERRED_RECIPIENT] }] },
    'slow.test': { mx: [{ host: 'mx1.slow.test', tls: 'tls13', dataDelayMs: 10_000 }] },
    // the envelope sender's mailbox, where DSNs arrive
    'sender.test': { mx: [{ host: 'mx1.sender.test', tls: 'tls13' }] },
  };
}
