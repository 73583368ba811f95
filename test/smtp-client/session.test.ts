import net from 'node:net';
import { MxSessionError, openMxSession, type MxSessionOptions } from '../../src/smtp-client';
import { defaultTlsProfile } from '../../src/policy/tls-profile';

const options: MxSessionOptions = { profile: defaultTlsProfile(), ehloName: 'sealgate.test', connectTimeout: 2_000, greetingTimeout: 2_000, socketTimeout: 2_000 };

/** A bare SMTP peer that accepts STARTTLS and then resets the connection on the ClientHello. */
function startResettingServer(): Promise<net.Server> {
  const server = net.createServer((socket) => {
    let upgraded = false;
    socket.on('error', () => undefined);
    socket.write('220 reset.test ESMTP\r\n');
    socket.on('data', (data) => {
      if (upgraded) return socket.resetAndDestroy();
      const line = data.toString('latin1');
      if (/^EHLO/i.test(line)) socket.write('250-reset.test\r\n250 STARTTLS\r\n');
      else if (/^STARTTLS/i.test(line)) {
        upgraded = true;
        socket.write('220 go ahead\r\n');
      } else socket.write('250 ok\r\n');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('MX session failures on the network', () => {
  it('a reset in the middle of the handshake is transient, not non-compliant', async () => {
    const server = await startResettingServer();
    try {
      const port = (server.address() as net.AddressInfo).port;
      const err = await openMxSession({ host: 'reset.test', address: '127.0.0.1', port, servername: 'reset.test' }, options).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MxSessionError);
      expect(err).toMatchObject({ classification: 'transient', code: 'tls-handshake-interrupted', starttlsAdvertised: true });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('a refused connection is transient', async () => {
    // Bind and close a port so nothing listens on it.
    const probe = net.createServer();
    const port = await new Promise<number>((resolve) => probe.listen(0, '127.0.0.1', () => resolve((probe.address() as net.AddressInfo).port)));
    await new Promise((resolve) => probe.close(resolve));
    const err = await openMxSession({ host: 'closed.test', address: '127.0.0.1', port, servername: 'closed.test' }, options).catch((e: unknown) => e);
    expect(err).toMatchObject({ classification: 'transient', code: 'connect-failed', starttlsAdvertised: null });
  });
});
