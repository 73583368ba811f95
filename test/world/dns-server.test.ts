import { promises as dns } from 'node:dns';
import net from 'node:net';
import * as dnsPacket from 'dns-packet';
import { startDnsServer, type DnsServer } from '../support/world/dns-server';

describe('test world DNS server', () => {
  let server: DnsServer;
  let resolver: dns.Resolver;

  beforeAll(async () => {
    server = await startDnsServer({ host: '127.0.0.2', zones: ['example.test'] });
    server.set('example.test', 'MX', [
      { preference: 10, exchange: 'mx1.example.test' },
      { preference: 20, exchange: 'mx2.example.test.' },
    ]);
    server.set('mx1.example.test', 'A', ['127.0.0.10'], 120);
    server.set('mx1.example.test', 'AAAA', ['::1']);
    server.set('_mta-sts.example.test', 'TXT', [['v=STSv1; ', 'id=20261127;']]);
    server.set('long.example.test', 'TXT', ['x'.repeat(600)]);
    server.set('nullmx.example.test', 'MX', [{ preference: 0, exchange: '.' }]);
    server.set('alias.example.test', 'CNAME', ['mx1.example.test']);
    server.set('deep.sub.example.test', 'A', ['127.0.0.11']);
    server.set('broken.example.test', 'A', ['127.0.0.12']);
    server.fail('broken.example.test', 'servfail');
    server.set('silent.example.test', 'A', ['127.0.0.13']);
    server.fail('silent.example.test', 'timeout');
  });

  beforeEach(() => {
    resolver = new dns.Resolver({ timeout: 300, tries: 1 });
    resolver.setServers([server.address]);
  });

  afterAll(() => server.close());

  it('listens on the chosen loopback address and a runtime port', () => {
    expect(server.host).toBe('127.0.0.2');
    expect(server.port).toBeGreaterThan(0);
    expect(server.address).toBe(`127.0.0.2:${server.port}`);
  });

  it('serves MX records, A records with TTLs, AAAA and CNAME', async () => {
    const mx = await resolver.resolveMx('example.test');
    expect(mx.sort((a, b) => a.priority - b.priority)).toEqual([
      { priority: 10, exchange: 'mx1.example.test' },
      { priority: 20, exchange: 'mx2.example.test' },
    ]);
    expect(await resolver.resolve4('mx1.example.test', { ttl: true })).toEqual([{ address: '127.0.0.10', ttl: 120 }]);
    expect(await resolver.resolve6('mx1.example.test')).toEqual(['::1']);
    expect(await resolver.resolve4('alias.example.test')).toEqual(['127.0.0.10']);
    expect(await resolver.resolveCname('alias.example.test')).toEqual(['mx1.example.test']);
  });

  it('serves a null MX as exchange "" with preference 0', async () => {
    expect(await resolver.resolveMx('nullmx.example.test')).toEqual([{ priority: 0, exchange: '' }]);
  });

  it('serves TXT records as character-strings that the resolver can join', async () => {
    const txt = await resolver.resolveTxt('_mta-sts.example.test');
    expect(txt).toEqual([['v=STSv1; ', 'id=20261127;']]);
    expect(txt[0]?.join('')).toBe('v=STSv1; id=20261127;');
    const long = await resolver.resolveTxt('long.example.test');
    expect(long[0]?.map((part) => part.length)).toEqual([255, 255, 90]);
  });

  it('answers NXDOMAIN for unknown names in a zone and NODATA (ENODATA) for a missing type', async () => {
    await expect(resolver.resolveMx('nothing.example.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(resolver.resolveMx('mx1.example.test')).rejects.toMatchObject({ code: 'ENODATA' });
    // an empty non-terminal exists too
    await expect(resolver.resolve4('sub.example.test')).rejects.toMatchObject({ code: 'ENODATA' });
    expect(server.queriesFor('nothing.example.test', 'MX').map((q) => q.rcode)).toEqual(['NXDOMAIN']);
  });

  it('answers SERVFAIL, REFUSED outside its zones, and can stay silent', async () => {
    await expect(resolver.resolve4('broken.example.test')).rejects.toMatchObject({ code: 'ESERVFAIL' });
    await expect(resolver.resolve4('outside.invalid')).rejects.toMatchObject({ code: 'EREFUSED' });
    await expect(resolver.resolve4('silent.example.test')).rejects.toMatchObject({ code: 'ETIMEOUT' });
    expect(server.queriesFor('silent.example.test').map((q) => q.rcode)).toContain('DROPPED');
  });

  it('changes records at runtime and logs every query', async () => {
    server.set('moving.example.test', 'A', ['127.0.0.20']);
    expect(await resolver.resolve4('moving.example.test')).toEqual(['127.0.0.20']);
    server.set('moving.example.test', 'A', ['127.0.0.21']);
    expect(await resolver.resolve4('moving.example.test')).toEqual(['127.0.0.21']);
    server.remove('moving.example.test');
    await expect(resolver.resolve4('moving.example.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    server.fail('mx1.example.test', 'servfail', 'A');
    await expect(resolver.resolve4('mx1.example.test')).rejects.toMatchObject({ code: 'ESERVFAIL' });
    expect(await resolver.resolve6('mx1.example.test')).toEqual(['::1']);
    server.fail('mx1.example.test', null, 'A');
    expect(await resolver.resolve4('mx1.example.test')).toEqual(['127.0.0.10']);
    expect(server.queriesFor('moving.example.test', 'A')).toHaveLength(3);
    expect(server.queriesFor('moving.example.test', 'A').every((q) => q.transport === 'udp')).toBe(true);
  });

  it('answers over TCP with length-prefixed frames', async () => {
    const socket = net.connect(server.port, server.host);
    const reply = await new Promise<Buffer>((resolve, reject) => {
      let data = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        data = Buffer.concat([data, chunk]);
        if (data.length >= 2 && data.length >= 2 + data.readUInt16BE(0)) resolve(data);
      });
      socket.on('error', reject);
      socket.write(dnsPacket.streamEncode({ type: 'query', id: 7, questions: [{ type: 'MX', name: 'example.test' }] }));
    });
    socket.destroy();
    const decoded = dnsPacket.streamDecode(reply) as { id?: number; answers?: { type: string; data: unknown }[] };
    expect(decoded.id).toBe(7);
    expect(decoded.answers?.map((a) => a.type)).toEqual(['MX', 'MX']);
    expect(server.queriesFor('example.test', 'MX').some((q) => q.transport === 'tcp')).toBe(true);
  });
});
