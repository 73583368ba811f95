import { parseConfig } from '../../src/config/load';
import { createPolicyRuntime, type DeliveryPlan } from '../../src/policy';
import { closeMxSession, connectCandidate } from '../../src/smtp-client';
import { startWorld, type World } from '../support/world';

/** The API the delivery engine uses: plan, then connectCandidate, then send on the open session. */
describe('planDelivery + connectCandidate (delivery engine API)', () => {
  let world: World;

  beforeAll(async () => {
    world = await startWorld({
      'tls13.test': { mx: [{ host: 'mx1.tls13.test', tls: 'tls13' }] },
      'secondmx.test': {
        mx: [
          { host: 'mx1.secondmx.test', tls: 'none', preference: 10 },
          { host: 'mx2.secondmx.test', tls: 'tls12-gcm', preference: 20 },
        ],
      },
    });
  }, 60_000);
  afterAll(() => world?.stop());

  const runtime = () => createPolicyRuntime(parseConfig({ hostname: 'sealgate.test', listeners: [{ name: 's', port: 0, tls: 'starttls', auth: 'required' }], ...world.relayConfig() }, {}, '/tmp'));

  function deliverPlan(plan: DeliveryPlan) {
    if (plan.kind !== 'deliver') throw new Error(`expected a deliver plan, got ${plan.kind}: ${plan.reason}`);
    return plan;
  }

  it('returns an open, judged session that carries a message over TLS with SNI', async () => {
    const rt = runtime();
    const plan = deliverPlan(await rt.planner.planDelivery('tls13.test'));
    const result = await connectCandidate(plan.candidates[0]!, rt.sessionOptions);
    if (!result.ok) throw new Error(result.reason);
    expect(result.judgement).toMatchObject({ compliant: true });
    expect(result.session.negotiated.protocol).toBe('TLSv1.3');
    const info = await new Promise<{ accepted: unknown[] }>((resolve, reject) =>
      result.session.connection.send({ from: 'a@sender.test', to: ['b@tls13.test'] }, 'Subject: probe\r\n\r\nhello\r\n', (err, sent) => (err ? reject(err) : resolve(sent))),
    );
    await closeMxSession(result.session);
    expect(info.accepted).toEqual(['b@tls13.test']);
    const received = world.mx('mx1.tls13.test').received;
    expect(received).toHaveLength(1);
    expect(received[0]!.tls).toMatchObject({ protocol: 'TLSv1.3', servername: 'mx1.tls13.test' });
  });

  it('reports a non-compliant first MX and connects to the second', async () => {
    const rt = runtime();
    const plan = deliverPlan(await rt.planner.planDelivery('secondmx.test'));
    expect(plan.candidates.map((c) => c.host)).toEqual(['mx1.secondmx.test', 'mx2.secondmx.test']);
    const first = await connectCandidate(plan.candidates[0]!, rt.sessionOptions);
    expect(first).toMatchObject({ ok: false, classification: 'non-compliant', code: 'starttls-not-offered', starttlsAdvertised: false });
    const second = await connectCandidate(plan.candidates[1]!, rt.sessionOptions);
    if (!second.ok) throw new Error(second.reason);
    expect(second.session.negotiated).toMatchObject({ protocol: 'TLSv1.2', cipher: expect.stringMatching(/_GCM_/) });
    await closeMxSession(second.session);
  });
});
