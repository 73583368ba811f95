import { existsSync } from 'node:fs';
import path from 'node:path';
import { leafCertificate, startWorld, type World } from '../support/world';
import { queryDnssec, startSignedZone, tlsaData, tlsaRdata, type SignedZoneWorld } from '../support/dnssec';

/**
 * The DNSSEC harness itself: a zone signed by ldns-signzone, served by nsd, validated by unbound
 * (trust anchor = the zone's DS), with the ordinary world DNS behind it for unsigned names.
 */

const ZONE = 'harness.test';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('DNSSEC test world (nsd + unbound + signed zone)', () => {
  let world: World;
  let dnssec: SignedZoneWorld;
  let certPem: string;

  beforeAll(async () => {
    world = await startWorld({ 'plain.test': { mx: [{ host: 'mx1.plain.test', tls: 'tls13' }] } });
    certPem = (await leafCertificate('self-signed', 'mx1.signed.harness.test')).cert;
    dnssec = await startSignedZone({
      zone: ZONE,
      forwardTo: world.dnsServer,
      records: [
        { name: `signed.${ZONE}`, type: 'MX', data: `10 mx1.signed.${ZONE}.` },
        { name: `mx1.signed.${ZONE}`, type: 'A', data: '127.0.0.10' },
        { name: `_25._tcp.mx1.signed.${ZONE}`, type: 'TLSA', data: tlsaRdata(3, 1, 1, tlsaData(certPem, 1, 1)) },
        { name: `mx1.bogus.${ZONE}`, type: 'A', data: '127.0.0.11' },
        { name: `_25._tcp.mx1.bogus.${ZONE}`, type: 'TLSA', data: tlsaRdata(3, 1, 1, tlsaData(certPem, 1, 1)) },
      ],
      bogus: [`_25._tcp.mx1.bogus.${ZONE}`],
    });
  });

  afterAll(async () => {
    await dnssec?.stop();
    await world?.stop();
  });

  it('answers a signed name with AD=1', async () => {
    const mx = await queryDnssec(dnssec.resolver, `signed.${ZONE}`, 'MX');
    expect(mx).toMatchObject({ rcode: 'NOERROR', ad: true });
    expect(mx.answers).toContainEqual(expect.objectContaining({ type: 'MX', data: { preference: 10, exchange: `mx1.signed.${ZONE}` } }));
    const a = await queryDnssec(dnssec.resolver, `mx1.signed.${ZONE}`, 'A');
    expect(a).toMatchObject({ rcode: 'NOERROR', ad: true });
  });

  it('serves the TLSA record computed from the certificate, validated', async () => {
    const answer = await queryDnssec(dnssec.resolver, `_25._tcp.mx1.signed.${ZONE}`, 'TLSA');
    expect(answer).toMatchObject({ rcode: 'NOERROR', ad: true });
    const record = answer.answers.find((rr) => rr.type === 'TLSA') as { data: { usage: number; selector: number; matchingType: number; certificate: Buffer } } | undefined;
    expect(record?.data).toMatchObject({ usage: 3, selector: 1, matchingType: 1 });
    expect(record?.data.certificate.toString('hex')).toBe(tlsaData(certPem, 1, 1));
  });

  it('proves a missing name inside the signed zone (NXDOMAIN with AD=1)', async () => {
    expect(await queryDnssec(dnssec.resolver, `_25._tcp.nothing.${ZONE}`, 'TLSA')).toMatchObject({ rcode: 'NXDOMAIN', ad: true });
  });

  it('answers an unsigned name from the ordinary world DNS with AD=0', async () => {
    const answer = await queryDnssec(dnssec.resolver, 'plain.test', 'MX');
    expect(answer).toMatchObject({ rcode: 'NOERROR', ad: false });
    expect(answer.answers).toContainEqual(expect.objectContaining({ type: 'MX' }));
    expect(world.dns.queriesFor('plain.test', 'MX')).not.toHaveLength(0);
  });

  it('answers SERVFAIL for a TLSA RRset whose signature does not verify, while nsd still serves it', async () => {
    expect(await queryDnssec(dnssec.resolver, `_25._tcp.mx1.bogus.${ZONE}`, 'TLSA')).toMatchObject({ rcode: 'SERVFAIL', ad: false, answers: [] });
    // The rest of the zone still validates, and the authoritative server does answer the broken RRset.
    expect(await queryDnssec(dnssec.resolver, `mx1.bogus.${ZONE}`, 'A')).toMatchObject({ rcode: 'NOERROR', ad: true });
    const direct = await queryDnssec(dnssec.authoritative, `_25._tcp.mx1.bogus.${ZONE}`, 'TLSA');
    expect(direct.rcode).toBe('NOERROR');
    expect(direct.answers.map((rr) => rr.type).sort()).toEqual(['RRSIG', 'TLSA']);
  });

  it('stops both daemons by PID and removes its files', async () => {
    const extra = await startSignedZone({ zone: 'stop.test', records: [{ name: 'a.stop.test', type: 'A', data: '127.0.0.10' }] });
    const pids = [extra.nsd.pid, extra.unbound.pid];
    const dir = path.dirname(extra.nsd.logFile);
    expect(pids.every(alive)).toBe(true);
    await extra.stop();
    expect(pids.filter(alive)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
  });
});
