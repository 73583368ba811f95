import { existsSync } from 'node:fs';
import { promises as dns } from 'node:dns';
import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import nodemailer from 'nodemailer';
import { REJECTED_RECIPIENT, standardScenarios, startWorld, type World } from '../support/world';

interface Fetched {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** GET https://mta-sts.<domain>/.well-known/mta-sts.txt the way a policy fetcher would: via the world's DNS, CA and port. */
async function fetchPolicy(world: World, domain: string, timeoutMs = 2000): Promise<Fetched> {
  const resolver = new dns.Resolver({ timeout: 500, tries: 1 });
  resolver.setServers([world.dnsServer]);
  const hostname = `mta-sts.${domain}`;
  const [address] = await resolver.resolve4(hostname);
  return new Promise((resolve, reject) => {
    const request = https.get(
      { host: address, servername: hostname, headers: { host: hostname }, port: world.mtaStsPort, path: '/.well-known/mta-sts.txt', ca: world.caPem, timeout: timeoutMs },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    request.on('error', reject);
  });
}

describe('test world (standard scenarios)', () => {
  let world: World;
  let resolver: dns.Resolver;

  beforeAll(async () => {
    world = await startWorld(standardScenarios());
    resolver = new dns.Resolver({ timeout: 500, tries: 1 });
    resolver.setServers([world.dnsServer]);
  });

  afterAll(() => world?.stop());

  it('exposes where everything is', () => {
    expect(world.dnsServer).toMatch(/^127\.0\.0\.2:\d+$/);
    expect(world.smtpPort).toBeGreaterThan(0);
    expect(world.mxServers.every((server) => server.port === world.smtpPort)).toBe(true);
    expect(new Set(world.mxServers.map((server) => server.host)).size).toBe(world.mxServers.length);
    expect(world.mxServers.every((server) => server.host.startsWith('127.'))).toBe(true);
    expect(existsSync(world.caFile)).toBe(true);
    expect(world.domains).toEqual(expect.arrayContaining(['tls13.test', 'nullmx.test', 'implicitmx.test', 'sender.test']));
    expect(world.relayConfig()).toEqual({
      dns: { servers: [world.dnsServer] },
      outbound: { port: world.smtpPort, extraCaFile: world.caFile },
      mtaSts: { port: world.mtaStsPort, extraCaFile: world.caFile },
    });
  });

  it('publishes MX and A records that lead to the right MX server', async () => {
    expect(await resolver.resolveMx('tls13.test')).toEqual([{ priority: 10, exchange: 'mx1.tls13.test' }]);
    expect(await resolver.resolve4('mx1.tls13.test')).toEqual([world.mx('mx1.tls13.test').host]);
    const secondMx = await resolver.resolveMx('secondmx.test');
    expect(secondMx.sort((a, b) => a.priority - b.priority).map((mx) => mx.exchange)).toEqual(['mx1.secondmx.test', 'mx2.secondmx.test']);
  });

  it('publishes null MX, implicit MX, SERVFAIL and NXDOMAIN cases', async () => {
    expect(await resolver.resolveMx('nullmx.test')).toEqual([{ priority: 0, exchange: '' }]);
    await expect(resolver.resolveMx('implicitmx.test')).rejects.toMatchObject({ code: 'ENODATA' });
    expect(await resolver.resolve4('implicitmx.test')).toEqual([world.addressOf('implicitmx.test')]);
    expect(world.mx('implicitmx.test').host).toBe(world.addressOf('implicitmx.test'));
    await expect(resolver.resolveMx('servfail.test')).rejects.toMatchObject({ code: 'ESERVFAIL' });
    await expect(resolver.resolveMx('dnstimeout.test')).rejects.toMatchObject({ code: 'ETIMEOUT' });
    await expect(resolver.resolveMx('no-such-domain.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('publishes the _mta-sts TXT records and points mta-sts.<domain> at the HTTPS server', async () => {
    const txt = await resolver.resolveTxt('_mta-sts.sts-enforce.test');
    expect(txt.map((parts) => parts.join(''))).toEqual(['v=STSv1; id=20261127T000000;']);
    expect(await resolver.resolve4('mta-sts.sts-enforce.test')).toEqual([world.mtaSts.host]);
    await expect(resolver.resolveTxt('_mta-sts.tls13.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('serves MTA-STS policies over HTTPS, verifiable with the test CA', async () => {
    const enforce = await fetchPolicy(world, 'sts-enforce.test');
    expect(enforce.status).toBe(200);
    expect(enforce.headers['content-type']).toBe('text/plain');
    expect(enforce.body).toBe('version: STSv1\r\nmode: enforce\r\nmx: *.sts-enforce.test\r\nmax_age: 86400\r\n');
    expect((await fetchPolicy(world, 'sts-mismatch.test')).body).toContain('mx: mx.elsewhere.test\r\n');
    expect((await fetchPolicy(world, 'sts-testing.test')).body).toContain('mode: testing\r\n');
    expect((await fetchPolicy(world, 'sts-fetchfail.test')).status).toBe(404);
    expect(world.mtaSts.requestsFor('sts-enforce.test')[0]).toMatchObject({
      servername: 'mta-sts.sts-enforce.test',
      path: '/.well-known/mta-sts.txt',
    });
  });

  it('changes MTA-STS answers at runtime: status, redirect, content type, size, delay, certificate', async () => {
    const domain = 'sts-testing.test';
    try {
      world.mtaSts.set(domain, { status: 500, body: 'oops' });
      expect((await fetchPolicy(world, domain)).status).toBe(500);
      world.mtaSts.set(domain, { redirect: 'https://elsewhere.test/policy.txt' });
      const redirected = await fetchPolicy(world, domain);
      expect([redirected.status, redirected.headers.location]).toEqual([301, 'https://elsewhere.test/policy.txt']);
      world.mtaSts.set(domain, { policy: { mode: 'enforce', mx: ['a.test'], maxAge: 60 }, contentType: 'text/html' });
      expect((await fetchPolicy(world, domain)).headers['content-type']).toBe('text/html');
      world.mtaSts.set(domain, { policy: { mode: 'enforce', mx: ['a.test'], maxAge: 60 }, oversizeBytes: 70_000 });
      expect((await fetchPolicy(world, domain)).body.length).toBeGreaterThan(70_000);
      world.mtaSts.set(domain, { policy: { mode: 'enforce', mx: ['a.test'], maxAge: 60 }, delayMs: 2000 });
      await expect(fetchPolicy(world, domain, 200)).rejects.toMatchObject({ code: 'ETIMEDOUT' });
      world.mtaSts.set(domain, { policy: { mode: 'enforce', mx: ['a.test'], maxAge: 60 }, certificate: 'wrong-name' });
      await expect(fetchPolicy(world, domain)).rejects.toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
      world.mtaSts.remove(domain);
      expect((await fetchPolicy(world, domain)).status).toBe(404);
    } finally {
      world.mtaSts.set(domain, { policy: { mode: 'testing', mx: ['mx.elsewhere.test'], maxAge: 86_400 } });
    }
  });

  it('delivers through an MX found via the world DNS and records bytes and TLS facts', async () => {
    const [mx] = await resolver.resolveMx('tls12.test');
    const [address] = await resolver.resolve4(mx?.exchange ?? '');
    const transport = nodemailer.createTransport({
      host: address,
      port: world.smtpPort,
      requireTLS: true,
      tls: { ca: world.caPem, servername: mx?.exchange, minVersion: 'TLSv1.2' },
    });
    const raw = 'From: a@sender.test\r\nTo: r@tls12.test\r\nMessage-ID: <w1@sender.test>\r\n\r\nhello\r\n';
    await transport.sendMail({ envelope: { from: 'a@sender.test', to: ['r@tls12.test'] }, raw });
    transport.close();
    const message = await world.mx('mx1.tls12.test').waitFor((m) => m.rcptTo.includes('r@tls12.test'), 5000);
    expect(message.raw.toString()).toBe(raw);
    expect(message.tls).toMatchObject({ protocol: 'TLSv1.2', cipher: expect.stringMatching(/_GCM_/), servername: 'mx1.tls12.test' });
    expect(world.received()).toContain(message);
  });

  it('offers the sender mailbox and clears recordings between tests', async () => {
    const mailbox = world.mailbox('sender.test');
    expect(mailbox.name).toBe('mx1.sender.test');
    expect(world.mailbox('implicitmx.test').name).toBe('implicitmx.test');
    expect(() => world.mailbox('nullmx.test')).toThrow(/no MX/);
    const transport = nodemailer.createTransport({ host: mailbox.host, port: world.smtpPort, tls: { ca: world.caPem, servername: mailbox.name } });
    await transport.sendMail({ envelope: { from: '', to: ['postmaster@sender.test'] }, raw: 'Subject: dsn\r\n\r\nx\r\n' });
    transport.close();
    expect((await mailbox.waitFor((m) => m.mailFrom === '')).rcptTo).toEqual(['postmaster@sender.test']);
    world.clearRecords();
    expect(mailbox.received).toHaveLength(0);
    expect(world.dns.queries).toHaveLength(0);
    expect(world.mtaSts.requests).toHaveLength(0);
  });

  it('the rcpt550 MX refuses its rejected recipient', async () => {
    const server = world.mx('mx1.rcpt550.test');
    const transport = nodemailer.createTransport({ host: server.host, port: world.smtpPort, tls: { ca: world.caPem, servername: server.name } });
    await expect(transport.sendMail({ envelope: { from: 'a@sender.test', to: [REJECTED_RECIPIENT] }, raw: 'x: y\r\n\r\nz\r\n' })).rejects.toMatchObject({
      code: 'EENVELOPE',
    });
    transport.close();
    expect(server.events.some((event) => event.kind === 'rcpt-rejected' && event.detail.startsWith('550'))).toBe(true);
  });
});

describe('startWorld', () => {
  it('starts small worlds quickly after the first, and stop() removes its temp files', async () => {
    const spec = {
      'one.test': { mx: [{ host: 'mx1.one.test', tls: 'tls13' as const }], mtaSts: { mode: 'enforce' as const, mx: ['mx1.one.test'] } },
      'two.test': {
        mx: [
          { host: 'mx1.two.test', tls: 'tls12-gcm' as const },
          { host: 'mx1.one.test', tls: 'tls13' as const },
        ],
      },
    };
    const first = await startWorld(spec);
    const second = await startWorld(spec); // a second world at the same time gets its own ports
    try {
      expect(second.smtpPort).not.toBe(first.smtpPort);
      expect(first.mxServers.map((server) => server.name).sort()).toEqual(['mx1.one.test', 'mx1.two.test']);
    } finally {
      await first.stop();
      await second.stop();
    }
    expect(existsSync(first.caFile)).toBe(false);
    await first.stop(); // idempotent
  });
});
