import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createDnsWireClient } from '../../src/policy/dns-wire';
import { createResolver, type DnsResolver } from '../../src/policy/resolver';

/**
 * The validating resolver against the real thing: a zone signed with ldns-signzone, served by nsd, validated by
 * unbound with the zone's DS as trust anchor (all on 127.0.0.1, ports picked here). Self-contained on purpose:
 * the shared test world has its own DNSSEC setup.
 */

const BINARIES = ['/usr/sbin/nsd', '/usr/sbin/unbound', '/usr/bin/ldns-signzone', '/usr/bin/ldns-keygen'];
const available = BINARIES.every((file) => existsSync(file));
if (!available) console.warn(`skipping the unbound tests: missing ${BINARIES.filter((file) => !existsSync(file)).join(', ')}`);

const TLSA_HEX = '0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6';
// 9 strings of 250 bytes: well over the 1232-byte UDP buffer, so unbound truncates and the client retries over TCP.
const BIG_TXT = Array.from({ length: 9 }, (_, i) => `"${String(i).repeat(250)}"`).join(' ');

const SIGNED_ZONE = `$ORIGIN dane.test.
$TTL 300
@ IN SOA ns.dane.test. admin.dane.test. 1 3600 600 86400 300
@ IN NS ns.dane.test.
ns IN A 127.0.0.1
@ IN MX 10 mx.dane.test.
mx IN A 127.0.0.20
alias IN CNAME mx.dane.test.
big IN TXT ${BIG_TXT}
_25._tcp.mx IN TLSA 3 1 1 ${TLSA_HEX}
_25._tcp.bad IN TLSA 3 1 1 ${TLSA_HEX}
`;

const PLAIN_ZONE = `$ORIGIN plain.test.
$TTL 300
@ IN SOA ns.plain.test. admin.plain.test. 1 3600 600 86400 300
@ IN NS ns.dane.test.
@ IN MX 10 mx.plain.test.
mx IN A 127.0.0.21
`;

/** A port free for both UDP and TCP on 127.0.0.1 right now. */
async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    const port = udp.address().port;
    const tcp = net.createServer();
    const ok = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, '127.0.0.1', () => resolve(true));
    });
    await new Promise<void>((resolve) => (ok ? tcp.close(() => resolve()) : resolve()));
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (ok) return port;
  }
  throw new Error('no free port');
}

function startDaemon(command: string, args: string[], dir: string): ChildProcess {
  const child = spawn(command, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr?.on('data', () => undefined);
  return child;
}

async function stopDaemon(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => child.pid !== undefined && child.exitCode === null && process.kill(child.pid, 'SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

(available ? describe : describe.skip)('validating resolver against nsd + unbound (real DNSSEC)', () => {
  let dir: string;
  let nsd: ChildProcess | undefined;
  let unbound: ChildProcess | undefined;
  let resolver: DnsResolver;
  let unboundPort: number;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-unbound-'));
    writeFileSync(path.join(dir, 'dane.test.zone'), SIGNED_ZONE);
    writeFileSync(path.join(dir, 'plain.test.zone'), PLAIN_ZONE);
    const zsk = execFileSync('/usr/bin/ldns-keygen', ['-a', 'ECDSAP256SHA256', 'dane.test'], { cwd: dir }).toString().trim();
    const ksk = execFileSync('/usr/bin/ldns-keygen', ['-a', 'ECDSAP256SHA256', '-k', 'dane.test'], { cwd: dir }).toString().trim();
    execFileSync('/usr/bin/ldns-signzone', ['-n', 'dane.test.zone', zsk, ksk], { cwd: dir });
    // A bogus RRset: the TLSA data changed after signing, so its RRSIG no longer verifies.
    const signedFile = path.join(dir, 'dane.test.zone.signed');
    const signed = readFileSync(signedFile, 'utf8').replace(new RegExp(`^(_25\\._tcp\\.bad\\.dane\\.test\\.\\s+\\d+\\s+IN\\s+TLSA\\s+3 1 1 )0c72`, 'm'), '$1ffff');
    expect(signed).toContain('3 1 1 ffff');
    writeFileSync(signedFile, signed);
    const dsFile = readdirSync(dir).find((file) => file.startsWith(ksk) && file.endsWith('.ds'))!;
    const ds = readFileSync(path.join(dir, dsFile), 'utf8').trim().split(/\s+/);
    const trustAnchor = [ds[0], ...ds.slice(2)].join(' '); // drop the class: "dane.test. DS <tag> 13 2 <hex>"

    const nsdPort = await freePort();
    unboundPort = await freePort();
    writeFileSync(
      path.join(dir, 'nsd.conf'),
      `server:
  ip-address: 127.0.0.1@${nsdPort}
  port: ${nsdPort}
  username: ""
  chroot: ""
  zonesdir: "${dir}"
  database: ""
  zonelistfile: "${dir}/zone.list"
  xfrdfile: "${dir}/xfrd.state"
  xfrdir: "${dir}"
  pidfile: "${dir}/nsd.pid"
  logfile: "${dir}/nsd.log"
  server-count: 1
remote-control:
  control-enable: no
zone:
  name: dane.test
  zonefile: dane.test.zone.signed
zone:
  name: plain.test
  zonefile: plain.test.zone
`,
    );
    writeFileSync(
      path.join(dir, 'unbound.conf'),
      `server:
  interface: 127.0.0.1@${unboundPort}
  port: ${unboundPort}
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "${dir}"
  pidfile: "${dir}/unbound.pid"
  use-syslog: no
  logfile: "${dir}/unbound.log"
  do-ip6: no
  do-not-query-localhost: no
  num-threads: 1
  outgoing-range: 64
  so-rcvbuf: 0
  so-sndbuf: 0
  module-config: "validator iterator"
  local-zone: "test." nodefault
  trust-anchor: "${trustAnchor}"
  domain-insecure: "plain.test"
remote-control:
  control-enable: no
stub-zone:
  name: "dane.test"
  stub-addr: 127.0.0.1@${nsdPort}
stub-zone:
  name: "plain.test"
  stub-addr: 127.0.0.1@${nsdPort}
`,
    );
    nsd = startDaemon('/usr/sbin/nsd', ['-d', '-c', path.join(dir, 'nsd.conf')], dir);
    unbound = startDaemon('/usr/sbin/unbound', ['-d', '-c', path.join(dir, 'unbound.conf')], dir);
    resolver = createResolver({ servers: [`127.0.0.1:${unboundPort}`], timeout: 2_000, tries: 1, cacheSize: 100, validating: true });
    // Ready when unbound answers the signed MX securely (nsd may still be loading): bounded at 10 s.
    const probe = () => createResolver({ servers: [`127.0.0.1:${unboundPort}`], timeout: 500, tries: 1, cacheSize: 1, validating: true });
    const deadline = Date.now() + 10_000;
    for (;;) {
      const answer = await probe()
        .resolveMxSecure('dane.test')
        .catch(() => null);
      if (answer?.secure) break;
      if (Date.now() > deadline) throw new Error(`nsd/unbound not ready: ${readFileSync(path.join(dir, 'unbound.log'), 'utf8').slice(-2000)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }, 30_000);

  afterAll(async () => {
    await stopDaemon(unbound);
    await stopDaemon(nsd);
    if (dir) rmSync(dir, { recursive: true, force: true });
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
    expect(txt).toBe(Array.from({ length: 9 }, (_, i) => String(i).repeat(250)).join(''));
    const wire = createDnsWireClient({ servers: [{ host: '127.0.0.1', port: unboundPort }], timeout: 2_000, tries: 1 });
    await expect(wire.query('big.dane.test', 'TXT')).resolves.toMatchObject({ transport: 'tcp', authenticated: true, rcode: 'NOERROR' });
    await expect(wire.query('mx.dane.test', 'A')).resolves.toMatchObject({ transport: 'udp', authenticated: true });
  });
});
