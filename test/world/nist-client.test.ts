import tls from 'node:tls';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { checkNegotiated, defaultTlsProfile, tlsContextOptions } from '../../src/policy/tls-profile';
import { startWorld, type MxTlsBehaviour, type World } from '../support/world';

/**
 * The scenarios are only useful if the relay's own NIST client sees them as intended:
 * this connects to each behaviour with the default profile's options, as the relay would.
 */
describe('test world MX behaviours seen by a NIST-profile client', () => {
  const behaviours: MxTlsBehaviour[] = ['tls13', 'tls12-gcm', 'tls11', 'none', 'chacha20', 'self-signed', 'wrong-name', 'expired', 'weak-rsa', 'tls12-13'];
  let world: World;
  const profile = defaultTlsProfile();

  beforeAll(async () => {
    world = await startWorld(Object.fromEntries(behaviours.map((tlsBehaviour) => [`${tlsBehaviour}.test`, { mx: [{ host: `mx.${tlsBehaviour}.test`, tls: tlsBehaviour }] }])));
  });
  afterAll(() => world?.stop());

  async function attempt(behaviour: MxTlsBehaviour): Promise<{ outcome: string; socket?: tls.TLSSocket; connection: SMTPConnection }> {
    const server = world.mx(`mx.${behaviour}.test`);
    const connection = new SMTPConnection({
      host: server.host,
      port: world.smtpPort,
      requireTLS: true,
      name: 'relay.test',
      tls: { ...tlsContextOptions(profile), ca: world.caPem, servername: server.name, rejectUnauthorized: false },
    });
    return new Promise((resolve) => {
      connection.once('error', (error: Error & { code?: string }) => resolve({ outcome: `error ${error.code ?? ''} ${error.message}`, connection }));
      connection.connect(() => {
        const socket = (connection as unknown as { _socket: tls.TLSSocket })._socket;
        resolve({ outcome: 'connected', socket, connection });
      });
    });
  }

  it.each(['tls13', 'tls12-gcm', 'tls12-13'] as const)('%s: handshake succeeds, compliant, certificate trusted', async (behaviour) => {
    const { socket, connection, outcome } = await attempt(behaviour);
    expect(outcome).toBe('connected');
    expect(socket?.authorized).toBe(true);
    expect(checkNegotiated(socket as tls.TLSSocket, profile)).toMatchObject({ compliant: true });
    if (behaviour === 'tls12-gcm') expect(socket?.getProtocol()).toBe('TLSv1.2');
    if (behaviour === 'tls13') expect(socket?.getProtocol()).toBe('TLSv1.3');
    connection.close();
  });

  it.each(['tls11', 'chacha20'] as const)('%s: the handshake fails', async (behaviour) => {
    const { outcome, connection } = await attempt(behaviour);
    expect(outcome).toMatch(/^error ESOCKET/);
    connection.close();
  });

  it('none: no STARTTLS, so a requireTLS client fails with ETLS and nothing arrives', async () => {
    const { outcome, connection } = await attempt('none');
    expect(outcome).toMatch(/^error ETLS/);
    expect(world.mx('mx.none.test').received).toHaveLength(0);
    connection.close();
  });

  it.each(['self-signed', 'wrong-name', 'expired'] as const)('%s: handshake succeeds, compliant suite, certificate not trusted', async (behaviour) => {
    const { socket, connection, outcome } = await attempt(behaviour);
    expect(outcome).toBe('connected');
    expect(socket?.authorized).toBe(false);
    expect(checkNegotiated(socket as tls.TLSSocket, profile).compliant).toBe(true);
    connection.close();
  });

  it('weak-rsa: refused, by OpenSSL at the handshake or by the profile check afterwards', async () => {
    const { socket, connection, outcome } = await attempt('weak-rsa');
    const refused = outcome !== 'connected' || !socket?.authorized || !checkNegotiated(socket, profile).compliant;
    expect(refused).toBe(true);
    connection.close();
  });
});
