/**
 * Real DNSSEC for the test world: a zone signed with ldns-signzone, served by nsd, behind a
 * validating unbound whose only trust anchor is that zone's DS. Everything outside the zone is
 * forwarded to the ordinary (unsigned) world DNS, so unbound answers it as insecure (AD=0).
 *
 *   const dnssec = await startSignedZone({ zone: 'dane.test', records, bogus: ['_25._tcp.mx1.bogus.dane.test'],
 *                                          forwardTo: world.dnsServer });
 *   // relay: dns.servers = [dnssec.resolver], dns.validating = true
 *   await dnssec.stop();
 */
import { access, constants, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { NSD_BINARY, startNsd, startUnbound, UNBOUND_BINARY, type Daemon } from './daemons';
import { LDNS_KEYGEN, LDNS_SIGNZONE, signZone, writeZone, type ZoneRecord } from './zone';

export type { ZoneRecord } from './zone';
export type { Daemon } from './daemons';
export { queryDnssec, splitAddress, type DnssecAnswer } from './query';
export { tlsaData, tlsaRdata, type TlsaSelector, type TlsaMatching } from './tlsa';
export { worldZoneRecords } from './world-records';

export interface SignedZoneOptions {
  /** The signed zone's apex, e.g. `dane.test`. */
  zone: string;
  records: ZoneRecord[];
  /** Owner names (`_25._tcp.<mx>`) whose TLSA RRset gets a broken signature: unbound answers SERVFAIL. */
  bogus?: string[];
  /** 'ip:port' answering every other name (the world's DNS server); without it they fail. */
  forwardTo?: string;
  /** Further zones served unsigned by the same nsd: no trust anchor covers them, so unbound answers them insecure. */
  unsigned?: UnsignedZone[];
}

export interface UnsignedZone {
  zone: string;
  records: ZoneRecord[];
}

export interface SignedZoneWorld {
  zone: string;
  /** 'ip:port' of the validating unbound: the relay's `dns.servers` entry with `dns.validating: true`. */
  resolver: string;
  /** 'ip:port' of nsd (authoritative, no recursion). */
  authoritative: string;
  /** The DS record unbound trusts. */
  trustAnchor: string;
  nsd: Daemon;
  unbound: Daemon;
  /** Stop unbound and nsd by PID and remove the temp folder. Safe to call twice. */
  stop(): Promise<void>;
}

/** The DNSSEC tools this machine lacks (none when .ci/run has installed them). */
export async function missingDnssecTools(files: string[] = [NSD_BINARY, UNBOUND_BINARY, LDNS_KEYGEN, LDNS_SIGNZONE]): Promise<string[]> {
  const missing: string[] = [];
  for (const file of files) {
    await access(file, constants.X_OK).catch(() => missing.push(file));
  }
  return missing;
}

/**
 * Throws, naming what is missing, unless every DNSSEC tool is installed. Tests that need them fail
 * rather than skip: a silently skipped DNSSEC test looks green in CI.
 */
export async function assertDnssecTools(files?: string[]): Promise<void> {
  const missing = await missingDnssecTools(files);
  if (missing.length > 0) throw new Error(`the DNSSEC test world needs ${missing.join(', ')} (packages nsd, unbound, ldnsutils): run the tests through .ci/run, which installs them`);
}

export async function startSignedZone(options: SignedZoneOptions): Promise<SignedZoneWorld> {
  await assertDnssecTools();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sealgate-dnssec-'));
  const started: Daemon[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.allSettled(
      started
        .splice(0)
        .reverse()
        .map((daemon) => daemon.stop()),
    );
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const signed = await signZone(dir, options.zone, options.records, options.bogus);
    const unsigned = await Promise.all((options.unsigned ?? []).map((zone) => writeZone(dir, zone.zone, zone.records)));
    const nsd = await startNsd({ dir, zone: signed.zone, zoneFile: signed.file, extraZones: unsigned });
    started.push(nsd);
    const unbound = await startUnbound({
      dir,
      zone: signed.zone,
      authoritative: nsd.address,
      trustAnchor: signed.ds,
      unsignedZones: unsigned.map((zone) => zone.zone),
      ...(options.forwardTo ? { forwardTo: options.forwardTo } : {}),
    });
    started.push(unbound);
    let stopped: Promise<void> | undefined;
    return {
      zone: signed.zone,
      resolver: unbound.address,
      authoritative: nsd.address,
      trustAnchor: signed.ds,
      nsd,
      unbound,
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
