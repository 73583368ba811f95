import type { AuditEntry } from '../../src/evidence/delivery';
import type { MessageRecord, Store } from '../../src/store/types';
import { runCli, type RelayFixture, type RelayProcess } from '../support/relay-process';
import { type World, type WorldSpec } from '../support/world';
import { submit } from '../support/submit';
import { waitForFinal } from '../support/wait';
import { startWorldRelay, type WorldRelay } from '../support/world-relay';

/**
 * REQUIRETLS (RFC 8689) end to end: a client submits with `MAIL FROM:<…> REQUIRETLS` over STARTTLS to the
 * real relay process, which may hand the message only to an MX authenticated by MTA-STS enforce (or DANE)
 * that advertises REQUIRETLS, passing the parameter on; anywhere else it bounces with 5.7.30, and the DSN
 * carries no body. One world and one relay for the whole suite.
 */

const SCENARIOS: WorldSpec = {
  // MTA-STS enforce, and the MX offers REQUIRETLS: delivered, with the parameter.
  'rt-sts.test': { mx: [{ host: 'mx1.rt-sts.test', tls: 'tls13', requireTls: true }], mtaSts: { mode: 'enforce', mx: ['mx1.rt-sts.test'] } },
  // MTA-STS enforce, but the MX does not offer REQUIRETLS: bounced 5.7.30 after EHLO, nothing sent.
  'rt-sts-noreq.test': { mx: [{ host: 'mx1.rt-sts-noreq.test', tls: 'tls13' }], mtaSts: { mode: 'enforce', mx: ['mx1.rt-sts-noreq.test'] } },
  // No MTA-STS and no DANE (the default level): bounced 5.7.30 at once, the MX never dialled, though it would take it.
  'rt-nopolicy.test': { mx: [{ host: 'mx1.rt-nopolicy.test', tls: 'tls13', requireTls: true }] },
  // MTA-STS published, but the policy fetch fails (404): the MX cannot be authenticated now, so the message waits.
  'rt-fetchfail.test': {
    mx: [{ host: 'mx1.rt-fetchfail.test', tls: 'tls13', requireTls: true }],
    mtaSts: { mode: 'enforce', mx: ['mx1.rt-fetchfail.test'], response: { status: 404 } },
  },
  // The envelope sender's mailbox, where the DSNs arrive.
  'sender.test': { mx: [{ host: 'mx1.sender.test', tls: 'tls13' }] },
};

const EXPECTED = {
  'patient@rt-sts.test': 'delivered',
  'patient@rt-sts-noreq.test': 'bounced',
  'patient@rt-nopolicy.test': 'bounced',
};

const BODY_MARKER = 'confidential-lab-result-7731';

function raw(tag: string): Buffer {
  return Buffer.from(
    `From: Clinic <clinic@sender.test>\r\nTo: undisclosed-recipients:;\r\nSubject: private ${tag}\r\nMessage-ID: <${tag}@sender.test>\r\nMIME-Version: 1.0\r\n` +
      `Content-Type: text/plain; charset=utf-8\r\n\r\n${BODY_MARKER}\r\n`,
  );
}

describe('REQUIRETLS end to end', () => {
  let setup: WorldRelay | undefined;
  let world: World;
  let fixture: RelayFixture;
  let relay: RelayProcess;
  let store: Store;

  beforeAll(async () => {
    setup = await startWorldRelay(SCENARIOS, { config: { audit: { file: 'audit.log' } } });
    ({ world, fixture, relay, store } = setup);
  });

  afterAll(async () => {
    await setup?.stop();
  });

  test('only the MTA-STS-authenticated MX that offers REQUIRETLS gets the message, with the parameter; the rest bounce 5.7.30 with a body-less DSN', async () => {
    const id = await submit(relay.ports.smarthost!, Object.keys(EXPECTED), raw('rt'), { requireTls: true });
    const message = await waitForFinal(store, id, 30_000);
    expect(message.params.requireTls).toBe(true);
    const states = Object.fromEntries(message.jobs.flatMap((j) => j.recipients.map((r) => [r.address, r.state])));
    expect(states).toEqual(EXPECTED);
    // Bounces are permanent: one attempt each, no retry.
    for (const job of message.jobs) expect(job.attempts).toBe(1);

    const delivered = world.mx('mx1.rt-sts.test').received;
    expect(delivered).toHaveLength(1);
    expect(delivered[0]!.mailParams).toMatchObject({ REQUIRETLS: true });
    expect(delivered[0]!.tls).toMatchObject({ servername: 'mx1.rt-sts.test' });
    expect(world.mx('mx1.rt-sts-noreq.test').received).toHaveLength(0);
    // The unauthenticated MX was never even dialled.
    expect(world.mx('mx1.rt-nopolicy.test').events.filter((e) => e.kind === 'connect')).toHaveLength(0);
    expect(world.mx('mx1.rt-sts-noreq.test').events.some((e) => e.kind === 'connect')).toBe(true);

    const audit = await runCli(['--config', fixture.configFile, 'audit', '<rt@sender.test>', '--json']);
    expect(audit.code).toBe(0);
    const entries = JSON.parse(audit.stdout) as AuditEntry[];
    const entry = (recipient: string): AuditEntry => entries.find((e) => e.recipient === recipient)!;
    expect(entry('patient@rt-sts.test')).toMatchObject({ outcome: 'delivered', policy: { source: 'mta-sts', mode: 'enforce' } });
    expect(entry('patient@rt-sts-noreq.test')).toMatchObject({ outcome: 'bounced', reason: 'requiretls-unavailable', reply: '550 5.7.30 REQUIRETLS support required' });
    expect(entry('patient@rt-sts-noreq.test').mxAttempts[0]).toMatchObject({ mx: 'mx1.rt-sts-noreq.test', class: 'non-compliant', code: 'requiretls-not-supported' });
    expect(entry('patient@rt-nopolicy.test')).toMatchObject({ outcome: 'bounced', reason: 'requiretls-unavailable', reply: '550 5.7.30 REQUIRETLS support required' });
    expect(entry('patient@rt-nopolicy.test').mxAttempts).toEqual([expect.objectContaining({ mx: 'mx1.rt-nopolicy.test', ip: null, class: 'non-compliant', code: 'requiretls-unauthenticated-mx' })]);

    // One DSN per bounced job, each with status 5.7.30, the headers at most, never the body.
    const mailbox = world.mailbox('sender.test');
    for (const recipient of ['patient@rt-sts-noreq.test', 'patient@rt-nopolicy.test']) {
      const dsn = await mailbox.waitFor((m) => m.mailFrom === '' && m.raw.includes(recipient), 20_000);
      const text = dsn.raw.toString();
      expect(text).toMatch(/multipart\/report/);
      expect(text).toContain('Status: 5.7.30');
      expect(text).not.toContain(BODY_MARKER);
    }
    // Nothing of the message's content in the relay's logs.
    expect(JSON.stringify(relay.logs)).not.toContain(BODY_MARKER);
    expect(JSON.stringify(relay.logs)).not.toContain('private rt');
  }, 60_000);

  test('a published MTA-STS policy that cannot be fetched defers the REQUIRETLS message (retried, never bounced or sent)', async () => {
    const id = await submit(relay.ports.smarthost!, ['patient@rt-fetchfail.test'], raw('rt-fetchfail'), { requireTls: true });
    const deadline = Date.now() + 20_000;
    let message: MessageRecord | undefined;
    // Two attempts, so the deferral is seen to be retried rather than turned into a bounce.
    while (Date.now() < deadline) {
      message = await store.getMessage(id);
      if ((message?.jobs[0]?.attempts ?? 0) >= 2) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const job = message!.jobs[0]!;
    expect(job.attempts).toBeGreaterThanOrEqual(2);
    expect(job.recipients[0]!.state).toBe('pending');
    expect(job.recipients[0]!.history.map((h) => [h.outcome, h.reason])).toContainEqual(['deferred', 'requiretls-mta-sts-unavailable']);
    expect(world.mx('mx1.rt-fetchfail.test').events.filter((e) => e.kind === 'connect')).toHaveLength(0);
    expect(world.mailbox('sender.test').received.some((m) => m.raw.includes('patient@rt-fetchfail.test'))).toBe(false);
  }, 45_000);

  test('without REQUIRETLS the same domain with no policy is delivered as before, and no parameter is sent', async () => {
    const id = await submit(relay.ports.smarthost!, ['other@rt-nopolicy.test'], raw('plain'));
    const message = await waitForFinal(store, id, 30_000);
    expect(message.jobs[0]!.recipients[0]!.state).toBe('delivered');
    const got = await world.mx('mx1.rt-nopolicy.test').waitFor((m) => m.rcptTo.includes('other@rt-nopolicy.test'), 10_000);
    expect(got.mailParams).not.toHaveProperty('REQUIRETLS');
  }, 45_000);
});
