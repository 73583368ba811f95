import { createDnsWireClient } from '../../src/policy/dns-wire';
import { createResolver, type DnsResolver } from '../../src/policy/resolver';
import { splitAddress, startSignedZone, type SignedZoneWorld } from '../support/dnssec';

/**
 * The validating resolver against the real thing: a zone signed with ldns-signzone, served by nsd, validated by
 * unbound with the zone's DS as trust anchor, plus an unsigned zone next to it (test/support/dnssec). Without
 * nsd/unbound/ldnsutils this fails, naming them: run it through .ci/run.
 */

const TLSA_HEX = '0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6';
// 9 × 250 bytes: well over the 1232-byte UDP buffer, so unbound truncates and the client retries over TCP.
const BIG_TXT = Array.from({ length: 9 }, (_, i) => String(i).repeat(250)).join('');

describe('validating resolver against nsd + unbound (real DNSSEC)', () => {
  let dnssec: SignedZoneWorld;
  let resolver: DnsResolver;

  beforeAll(async () => {
    dnssec = await startSignedZone({
      zone: 'dane.test',
      records: [
        { name: 'dane.test', type: 'MX', data: '10 mx.dane.test.' },
        { name: 'mx.dane.test', type: 'A', data: '127.0.0.20' },
        { name: 'alias.dane.test', type: 'CNAME', data: 'mx.dane.test.' },
        { name: 'big.dane.test', type: 'TXT', data: BIG_TXT },
        { name: '_25._tcp.mx.dane.test', type: 'TLSA', data: `3 1 1 ${TLSA_HEX}` },
        { name: '_25._tcp.bad.dane.test', type: 'TLSA', data: `3 1 1 ${TLSA_HEX}` },
      ],
      // A bogus RRset: the TLSA data changed after signing, so its RRSIG no longer verifies.
      bogus: ['_25._tcp.bad.dane.test'],
      unsigned: [
        {
          zone: 'plain.test',
          records: [
            { name: 'plain.test', type: 'MX', data: '10 mx.plain.test.' },
            { name: 'mx.plain.test', type: 'A', data: '127.0.0.21' },
          ],
        },
      ],
    });
    resolver = createResolver({ servers: [dnssec.resolver], timeout: 2_000, tries: 1, cacheSize: 100, validating: true });
  }, 30_000);

  afterAll(async () => {
    await dnssec?.stop();
  });

  test('a signed MX, its address (through a CNAME) and its TLSA record come back secure', async () => {
    await expect(resolver.resolveMxSecure('dane.test')).resolves.toEqual({ value: [{ exchange: 'mx.dane.test', priority: 10 }], secure: true });
    await expect(resolver.resolveAddressesSecure('alias.dane.test')).resolves.toEqual({ value: ['127.0.0.20'], secure: true, canonicalName: 'mx.dane.test' });
    await expect(resolver.resolveTlsa('_25._tcp.mx.dane.test')).resolves.toEqual({ value: [{ usage: 3, selector: 1, matchingType: 1, data: TLSA_HEX }], secure: true });
  });

  test('a TLSA RRset with a broken signature is SERVFAIL: temporary, code ESERVFAIL', async () => {
    await expect(resolver.resolveTlsa('_25._tcp.bad.dane.test')).rejects.toMatchObject({ kind: 'temporary', code: 'ESERVFAIL' });
  });

  test('a proved denial is secure; an unsigned zone is answered but not secure', async () => {
    await expect(resolver.resolveTlsa('_25._tcp.none.dane.test')).rejects.toMatchObject({ kind: 'nxdomain', secure: true });
    await expect(resolver.resolveMxSecure('plain.test')).resolves.toEqual({ value: [{ exchange: 'mx.plain.test', priority: 10 }], secure: false });
    await expect(resolver.resolveTlsa('_25._tcp.mx.plain.test')).rejects.toMatchObject({ kind: 'nxdomain', secure: false });
  });

  test('an answer too big for UDP is fetched over TCP', async () => {
    const [txt] = await resolver.resolveTxt('big.dane.test');
    expect(txt).toBe(BIG_TXT);
    const wire = createDnsWireClient({ servers: [splitAddress(dnssec.resolver)], timeout: 2_000, tries: 1 });
    await expect(wire.query('big.dane.test', 'TXT')).resolves.toMatchObject({ transport: 'tcp', authenticated: true, rcode: 'NOERROR' });
    await expect(wire.query('mx.dane.test', 'A')).resolves.toMatchObject({ transport: 'udp', authenticated: true });
  });
});
