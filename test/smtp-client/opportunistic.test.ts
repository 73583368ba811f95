import { connectOpportunistic, MxSessionError, permissiveTlsOptions, type MxSessionOptions, type MxTarget, type OpportunisticSession } from '../../src/smtp-client';

/** The retry order of opportunistic sessions (portal notices only), driven through a fake session opener. */

type Behaviour = 'plaintext' | 'tls' | 'old-tls' | 'refused' | 'broken-tls';

function opener(byAddress: Record<string, Behaviour>) {
  const calls: Array<[address: string, tls: 'profile' | 'permissive']> = [];
  const open = async (target: MxTarget, _options: MxSessionOptions, tls: 'profile' | 'permissive'): Promise<OpportunisticSession> => {
    calls.push([target.address, tls]);
    const behaviour = byAddress[target.address];
    if (behaviour === 'refused') throw new MxSessionError('connection refused', 'transient', 'connect-failed', null, null);
    if (behaviour === 'broken-tls' || (behaviour === 'old-tls' && tls === 'profile')) {
      throw new MxSessionError('handshake failed', 'non-compliant', 'tls-handshake-failed', true, null);
    }
    const encrypted = behaviour !== 'plaintext';
    return {
      target,
      connection: {} as OpportunisticSession['connection'],
      starttlsAdvertised: encrypted,
      protection: encrypted ? tls : 'plaintext',
      negotiated: encrypted ? { protocol: tls === 'profile' ? 'TLSv1.3' : 'TLSv1', cipher: 'x', group: null, groupBits: null, peerKey: null } : null,
      certificate: null,
    };
  };
  return { open, calls };
}

const candidate = (addresses: string[]) => ({ host: 'mx1.example.test', addresses, port: 25, servername: 'mx1.example.test' });
const options = {} as MxSessionOptions;

describe('connectOpportunistic', () => {
  it('no STARTTLS: one plaintext session, no retry', async () => {
    const { open, calls } = opener({ '192.0.2.1': 'plaintext' });
    const result = await connectOpportunistic(candidate(['192.0.2.1']), options, open);
    expect(result).toMatchObject({ ok: true, session: { protection: 'plaintext', negotiated: null } });
    expect(calls).toEqual([['192.0.2.1', 'profile']]);
  });

  it('the profile handshake works: that session', async () => {
    const { open, calls } = opener({ '192.0.2.1': 'tls' });
    expect(await connectOpportunistic(candidate(['192.0.2.1']), options, open)).toMatchObject({ ok: true, session: { protection: 'profile' } });
    expect(calls).toHaveLength(1);
  });

  it('the profile handshake fails: the same address again with the permissive client', async () => {
    const { open, calls } = opener({ '192.0.2.1': 'old-tls' });
    const result = await connectOpportunistic(candidate(['192.0.2.1']), options, open);
    expect(result).toMatchObject({ ok: true, session: { protection: 'permissive', negotiated: { protocol: 'TLSv1' } } });
    expect(calls).toEqual([
      ['192.0.2.1', 'profile'],
      ['192.0.2.1', 'permissive'],
    ]);
    expect(result.attempts.map((a) => [a.protection, a.error?.code ?? null])).toEqual([
      ['profile', 'tls-handshake-failed'],
      ['permissive', null],
    ]);
  });

  it('no handshake even with the permissive client: that failure, no other address of the same host', async () => {
    const { open, calls } = opener({ '192.0.2.1': 'broken-tls', '192.0.2.2': 'tls' });
    expect(await connectOpportunistic(candidate(['192.0.2.1', '192.0.2.2']), options, open)).toMatchObject({ ok: false, code: 'tls-handshake-failed' });
    expect(calls).toHaveLength(2);
  });

  it('a transient failure moves on to the next address', async () => {
    const { open, calls } = opener({ '192.0.2.1': 'refused', '192.0.2.2': 'plaintext' });
    expect(await connectOpportunistic(candidate(['192.0.2.1', '192.0.2.2']), options, open)).toMatchObject({ ok: true, session: { target: { address: '192.0.2.2' } } });
    expect(calls).toEqual([
      ['192.0.2.1', 'profile'],
      ['192.0.2.2', 'profile'],
    ]);
  });

  it('the permissive client allows TLS 1.0 and any suite and checks no certificate', () => {
    expect(permissiveTlsOptions('mx1.example.test')).toMatchObject({ minVersion: 'TLSv1', ciphers: 'ALL:@SECLEVEL=0', rejectUnauthorized: false, servername: 'mx1.example.test' });
  });
});
