import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import nodemailer from 'nodemailer';
import { testCa } from '../support/world/ca';
import { startMxServer, type MxServer, type MxServerOptions } from '../support/world/mx-server';

/** Plain-socket SMTP client: EHLO, optional STARTTLS, then a TLS handshake with the given options. */
async function probe(server: MxServer, tlsOptions: tls.ConnectionOptions): Promise<{ starttls: boolean; socket?: tls.TLSSocket; error?: NodeJS.ErrnoException }> {
  const socket = net.connect(server.port, server.host);
  let buffer = '';
  const readReply = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const lines = buffer.split('\r\n');
        const last = lines.findIndex((line) => /^\d{3} /.test(line));
        if (last >= 0) {
          const reply = lines.slice(0, last + 1).join('\n');
          buffer = lines.slice(last + 1).join('\r\n');
          socket.off('data', onData);
          socket.off('error', reject);
          resolve(reply);
        }
      };
      const onData = (chunk: Buffer): void => {
        buffer += chunk.toString('latin1');
        check();
      };
      socket.on('data', onData);
      socket.on('error', reject);
      check();
    });
  await readReply();
  socket.write('EHLO client.test\r\n');
  const ehlo = await readReply();
  if (!/STARTTLS/.test(ehlo)) {
    socket.end('QUIT\r\n');
    return { starttls: false };
  }
  socket.write('STARTTLS\r\n');
  await readReply();
  return new Promise((resolve) => {
    const secure = tls.connect({ socket, servername: server.name, ...tlsOptions }, () => resolve({ starttls: true, socket: secure }));
    secure.on('error', (error) => {
      socket.destroy();
      resolve({ starttls: true, error });
    });
  });
}

describe('test world MX servers', () => {
  const servers: MxServer[] = [];
  let caPem: string;

  async function start(options: Partial<MxServerOptions> & Pick<MxServerOptions, 'tls' | 'name'>): Promise<MxServer> {
    const server = await startMxServer({ host: '127.0.0.10', port: 0, ...options });
    servers.push(server);
    return server;
  }

  beforeAll(async () => {
    caPem = (await testCa()).caPem;
  });

  afterAll(async () => {
    await Promise.all(servers.map((server) => server.close()));
  });

  it('tls13: negotiates TLS 1.3 with a certificate valid for the MX name', async () => {
    const server = await start({ name: 'mx1.tls13.test', tls: 'tls13' });
    const { socket } = await probe(server, { ca: caPem });
    expect(socket?.authorized).toBe(true);
    expect(socket?.getProtocol()).toBe('TLSv1.3');
    socket?.destroy();
  });

  it('tls12-gcm: negotiates TLS 1.2 with an ECDHE AES-GCM suite', async () => {
    const server = await start({ name: 'mx1.tls12.test', tls: 'tls12-gcm' });
    const { socket } = await probe(server, { ca: caPem });
    expect(socket?.getProtocol()).toBe('TLSv1.2');
    expect(socket?.getCipher().standardName).toMatch(/^TLS_ECDHE_ECDSA_WITH_AES_(128|256)_GCM_SHA(256|384)$/);
    socket?.destroy();
  });

  it('tls11: refuses a client that requires TLS 1.2, and speaks TLS 1.1 to one that allows it', async () => {
    const server = await start({ name: 'mx1.tls11.test', tls: 'tls11' });
    const refused = await probe(server, { ca: caPem, minVersion: 'TLSv1.2' });
    expect(refused.error).toBeDefined();
    const old = await probe(server, { ca: caPem, minVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' });
    expect(old.socket?.getProtocol()).toBe('TLSv1.1');
    old.socket?.destroy();
    expect(server.events.some((event) => event.kind === 'tls-error')).toBe(true);
  });

  it('none: does not advertise STARTTLS, refuses the command, and nodemailer with requireTLS cannot send', async () => {
    const server = await start({ name: 'mx1.nostarttls.test', tls: 'none' });
    expect((await probe(server, { ca: caPem })).starttls).toBe(false);
    const transport = nodemailer.createTransport({ host: server.host, port: server.port, requireTLS: true, tls: { ca: caPem, servername: server.name } });
    await expect(transport.sendMail({ envelope: { from: 'a@sender.test', to: ['b@nostarttls.test'] }, raw: 'x: y\r\n\r\nz\r\n' })).rejects.toBeDefined();
    transport.close();
    expect(server.received).toHaveLength(0);
  });

  it('chacha20: a default client negotiates ChaCha20-Poly1305; an AES-GCM-only client fails', async () => {
    const server = await start({ name: 'mx1.chacha.test', tls: 'chacha20' });
    const { socket } = await probe(server, { ca: caPem });
    expect(socket?.getCipher().standardName).toBe('TLS_CHACHA20_POLY1305_SHA256');
    socket?.destroy();
    const gcmOnly = await probe(server, {
      ca: caPem,
      ciphers: 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384',
    });
    expect(gcmOnly.error).toBeDefined();
  });

  it.each([
    ['self-signed', 'DEPTH_ZERO_SELF_SIGNED_CERT'],
    ['wrong-name', 'ERR_TLS_CERT_ALTNAME_INVALID'],
    ['expired', 'CERT_HAS_EXPIRED'],
  ] as const)('%s: the certificate fails verification (%s)', async (behaviour, code) => {
    const server = await start({ name: `mx1.${behaviour}.test`, tls: behaviour });
    const { error } = await probe(server, { ca: caPem });
    expect(error?.code).toBe(code);
    const lenient = await probe(server, { ca: caPem, rejectUnauthorized: false });
    expect(lenient.socket?.authorized).toBe(false);
    lenient.socket?.destroy();
  });

  it('chain: sends the issuing test-CA root after the leaf (DANE-TA needs it); certificate is the leaf', async () => {
    const ca = await testCa();
    const root = new X509Certificate(ca.rootOf('valid')!);
    const sentBy = async (server: MxServer): Promise<Buffer[]> => {
      // No CA given: the chain seen is exactly what the server sent.
      const { socket } = await probe(server, { rejectUnauthorized: false });
      const chain: Buffer[] = [];
      for (let cert = socket!.getPeerCertificate(true); cert?.raw && !chain.some((c) => c.equals(cert.raw)); cert = cert.issuerCertificate) chain.push(cert.raw);
      socket!.destroy();
      return chain;
    };
    const chained = await start({ name: 'mx1.chain.test', tls: 'tls12-13', chain: true });
    const plain = await start({ name: 'mx1.nochain.test', tls: 'tls12-13', host: '127.0.0.11' });
    expect(chained.chainRoot).toBe(ca.rootOf('valid'));
    expect(plain.chainRoot).toBeNull();
    const chainedSent = await sentBy(chained);
    expect(chainedSent.map((der) => der.toString('hex'))).toEqual([new X509Certificate(chained.certificate).raw.toString('hex'), root.raw.toString('hex')]);
    expect(await sentBy(plain)).toEqual([new X509Certificate(plain.certificate).raw]);
    expect(new X509Certificate(chained.certificate).subject).toContain('mx1.chain.test');
  });

  it('weak-rsa: presents a trusted RSA 1024-bit certificate', async () => {
    const server = await start({ name: 'mx1.weakrsa.test', tls: 'weak-rsa' });
    const { socket } = await probe(server, { ca: caPem, ciphers: 'DEFAULT:@SECLEVEL=0' });
    expect(socket?.authorized).toBe(true);
    expect(socket?.getPeerCertificate().bits).toBe(1024);
    socket?.destroy();
  });

  it('records what nodemailer delivers: envelope, exact bytes and TLS facts', async () => {
    const server = await start({ name: 'mx1.accept.test', tls: 'tls13' });
    const transport = nodemailer.createTransport({
      host: server.host,
      port: server.port,
      requireTLS: true,
      name: 'relay.test',
      tls: { ca: caPem, servername: server.name },
    });
    const raw = 'From: a@sender.test\r\nTo: b@accept.test\r\nMessage-ID: <m1@sender.test>\r\nSubject: hi\r\n\r\nbody line\r\n';
    const info = await transport.sendMail({ envelope: { from: 'a@sender.test', to: ['b@accept.test'] }, raw });
    transport.close();
    expect(info.accepted).toEqual(['b@accept.test']);
    const message = await server.waitFor((m) => m.rcptTo.includes('b@accept.test'), 5000);
    expect(message.mailFrom).toBe('a@sender.test');
    expect(message.raw.toString('utf8')).toBe(raw);
    expect(message.tls).toEqual({
      protocol: 'TLSv1.3',
      cipher: expect.stringMatching(/^TLS_/),
      cipherOpenssl: expect.any(String),
      servername: 'mx1.accept.test',
    });
  });

  it('requireTls: offers REQUIRETLS after STARTTLS and records the MAIL FROM parameter; without it, a client that requires it cannot send', async () => {
    const offering = await start({ name: 'mx1.requiretls.test', tls: 'tls13', requireTls: true });
    const plain = await start({ name: 'mx1.norequiretls.test', tls: 'tls13', host: '127.0.0.11' });
    const send = async (server: MxServer) => {
      const transport = nodemailer.createTransport({ host: server.host, port: server.port, requireTLS: true, name: 'relay.test', tls: { ca: caPem, servername: server.name } });
      try {
        return await transport.sendMail({ envelope: { from: 'a@sender.test', to: [`b@${server.name}`] }, raw: 'Subject: r\r\n\r\nbody\r\n', requireTLSExtensionEnabled: true });
      } finally {
        transport.close();
      }
    };
    await send(offering);
    const message = await offering.waitFor(() => true, 5000);
    expect(message.mailParams).toMatchObject({ REQUIRETLS: true });
    await expect(send(plain)).rejects.toMatchObject({ code: 'EREQUIRETLS' });
    expect(plain.received).toHaveLength(0);
  });

  it('answers 4xx/5xx to chosen recipients and accepts the others', async () => {
    const server = await start({ name: 'mx1.rcpt.test', tls: 'tls13', rcpt5xx: ['Bad@rcpt.test'], rcpt4xx: ['later@rcpt.test'] });
    const transport = nodemailer.createTransport({ host: server.host, port: server.port, tls: { ca: caPem, servername: server.name } });
    const info = await transport.sendMail({
      envelope: { from: 'a@sender.test', to: ['bad@rcpt.test', 'later@rcpt.test', 'good@rcpt.test'] },
      raw: 'Subject: x\r\n\r\nx\r\n',
    });
    transport.close();
    expect(info.accepted).toEqual(['good@rcpt.test']);
    const codes = Object.fromEntries((info as unknown as { rejectedErrors: { recipient: string; responseCode: number }[] }).rejectedErrors.map((e) => [e.recipient, e.responseCode]));
    expect(codes).toEqual({ 'bad@rcpt.test': 550, 'later@rcpt.test': 450 });
    expect(server.received.map((m) => m.rcptTo)).toEqual([['good@rcpt.test']]);
  });

  it('451-once: the first attempt of a message is deferred, the next is accepted', async () => {
    const server = await start({ name: 'mx1.tempfail.test', tls: 'tls13', tempFailOnce: true });
    const transport = nodemailer.createTransport({ host: server.host, port: server.port, tls: { ca: caPem, servername: server.name } });
    const mail = { envelope: { from: 'a@sender.test', to: ['x@tempfail.test'] }, raw: 'Message-ID: <once@sender.test>\r\n\r\nx\r\n' };
    await expect(transport.sendMail(mail)).rejects.toMatchObject({ responseCode: 451 });
    expect(server.received).toHaveLength(0);
    await transport.sendMail(mail);
    transport.close();
    expect(server.received).toHaveLength(1);
    expect(server.events.filter((e) => e.kind === 'data-tempfail')).toHaveLength(1);
  });

  it('slow mode delays the DATA reply, and records nothing if the client hangs up first', async () => {
    const server = await start({ name: 'mx1.slow.test', tls: 'tls13', dataDelayMs: 300 });
    const transport = nodemailer.createTransport({ host: server.host, port: server.port, tls: { ca: caPem, servername: server.name } });
    await transport.sendMail({ envelope: { from: 'a@sender.test', to: ['x@slow.test'] }, raw: 'Subject: x\r\n\r\nx\r\n' });
    transport.close();
    expect(server.received).toHaveLength(1);

    server.setReplies({ dataDelayMs: 5000 });
    const socket = net.connect(server.port, server.host);
    socket.on('error', () => undefined);
    socket.write('EHLO c.test\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<y@slow.test>\r\nDATA\r\n');
    await new Promise((resolve) => setTimeout(resolve, 200));
    socket.write('Subject: y\r\n\r\ny\r\n.\r\n');
    await new Promise((resolve) => setTimeout(resolve, 200));
    socket.destroy();
    await expect(server.waitFor((m) => m.rcptTo.includes('y@slow.test'), 300)).rejects.toThrow(/no matching message/);
  });
});
