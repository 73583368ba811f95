import { get } from 'node:https';
import { connect, type TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { portalTlsOptions, startPortalServer } from '../../../src/portal/web';
import { selfSignedCertificate } from '../../support/certificates';
import { makeWorld, sampleMessage } from './fakes';

function handshake(
  port: number,
  options: { minVersion?: 'TLSv1.2' | 'TLSv1.3' | 'TLSv1' | 'TLSv1.1'; maxVersion?: 'TLSv1.2' | 'TLSv1.3' | 'TLSv1' | 'TLSv1.1'; ciphers?: string },
): Promise<{ protocol: string | null; cipher: string } | Error> {
  return new Promise((resolve) => {
    const socket: TLSSocket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options }, () => {
      const result = { protocol: socket.getProtocol(), cipher: socket.getCipher().standardName };
      socket.end();
      resolve(result);
    });
    socket.on('error', (err) => resolve(err));
  });
}

describe('portal HTTPS listener', () => {
  test('serves HTTPS with the NIST profile: TLS 1.2+, approved suites only', async () => {
    const world = makeWorld({ tls: await selfSignedCertificate('localhost'), realClock: true });
    const server = await startPortalServer(world.deps);
    try {
      expect(server.url).toBe(`https://127.0.0.1:${server.port}`);
      expect(await handshake(server.port, {})).toMatchObject({ protocol: 'TLSv1.3' });
      expect(await handshake(server.port, { maxVersion: 'TLSv1.2' })).toMatchObject({ protocol: 'TLSv1.2', cipher: expect.stringMatching(/^TLS_ECDHE_ECDSA_WITH_AES_(128|256)_GCM_SHA(256|384)$/) });
      expect(await handshake(server.port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' })).toHaveProperty('message');
      expect(await handshake(server.port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305' })).toHaveProperty('message');

      const { token } = world.copies.add({ body: sampleMessage() });
      const res = await new Promise<{ status?: number; headers: Record<string, unknown> }>((resolve, reject) =>
        get(`${server.url}/m/${token}`, { rejectUnauthorized: false }, (r) => {
          r.resume();
          resolve({ status: r.statusCode, headers: r.headers });
        }).on('error', reject),
      );
      expect(res.status).toBe(303);
      expect(res.headers['strict-transport-security']).toMatch(/max-age=31536000/);
      expect(String(res.headers['set-cookie'])).toMatch(/^__Host-sg-link=/);
    } finally {
      await server.close();
    }
  });

  test('a new certificate (reload) is served to new connections; a connection already open keeps its own', async () => {
    const first = await selfSignedCertificate('localhost');
    const renewed = await selfSignedCertificate('portal.example');
    const world = makeWorld({ tls: first, realClock: true });
    const server = await startPortalServer(world.deps);
    const fingerprint = (socket: TLSSocket) => socket.getPeerX509Certificate()!.fingerprint256;
    const sockets: TLSSocket[] = [];
    const open = (): Promise<TLSSocket> =>
      new Promise((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port: server.port, rejectUnauthorized: false }, () => resolve(socket));
        sockets.push(socket);
        socket.on('error', reject);
      });
    try {
      const before = await open();
      const beforePrint = fingerprint(before);
      expect(beforePrint).toBe(new X509Certificate(first.cert).fingerprint256);
      server.setTls(portalTlsOptions(world.deps.profile, renewed));
      const after = await open();
      expect(fingerprint(after)).toBe(new X509Certificate(renewed.cert).fingerprint256);
      // The connection opened before goes on (its certificate was fixed at its handshake).
      expect(before.destroyed).toBe(false);
    } finally {
      for (const socket of sockets) socket.destroy();
      await server.close();
    }
  });
});
