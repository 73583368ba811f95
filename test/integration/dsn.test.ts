import nodemailer from 'nodemailer';
import { loadConfig } from '../../src/config/load';
import { silentLogger } from '../../src/log/logger';
import { createStore } from '../../src/store';
import type { Store } from '../../src/store/types';
import { relayFixture, startRelayProcess, type RelayFixture, type RelayProcess } from '../support/relay-process';
import { RawSmtpClient } from '../support/smtp-client';
import { until } from '../support/wait';
import { DEFERRED_RECIPIENT, standardScenarios, startWorld, type ReceivedMessage, type World } from '../support/world';

/**
 * Delay warnings and NOTIFY per recipient through the real relay process: a recipient the test world's MX
 * keeps deferring (450) gets one "delayed" DSN to its sender after delivery.delayWarning, however many retries
 * follow; NOTIFY=NEVER gets none; NOTIFY=SUCCESS gets a "relayed" DSN when the next hop could not take it over.
 */

const DELAY_WARNING_MS = 2_000;

function raw(tag: string): Buffer {
  return Buffer.from(`From: Clinic <clinic@sender.test>\r\nTo: someone\r\nSubject: results ${tag}\r\nMessage-ID: <${tag}@sender.test>\r\n\r\nprivate body ${tag}\r\n`);
}

async function submit(port: number, to: string, tag: string, notify?: 'NEVER'): Promise<string> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, requireTLS: true, tls: { rejectUnauthorized: false } });
  try {
    const info = await transport.sendMail({ envelope: { from: 'clinic@sender.test', to: [to] }, raw: raw(tag), ...(notify ? { dsn: { notify } } : {}) });
    return /queued as (\S+)/.exec(info.response)![1]!;
  } finally {
    transport.close();
  }
}

/** One message whose recipients carry different NOTIFY values: nodemailer sends one NOTIFY for all, so this speaks SMTP itself. */
async function submitRaw(port: number, recipients: string[], tag: string): Promise<string> {
  const client = await RawSmtpClient.connect(port);
  try {
    expect((await client.command('EHLO client.test')).code).toBe(250);
    expect((await client.startTls({ rejectUnauthorized: false })).code).toBe(220);
    expect((await client.command('EHLO client.test')).code).toBe(250);
    expect((await client.command('MAIL FROM:<clinic@sender.test> ENVID=env-' + tag)).code).toBe(250);
    for (const line of recipients) expect((await client.command(`RCPT TO:${line}`)).code).toBe(250);
    expect((await client.command('DATA')).code).toBe(354);
    client.write(Buffer.concat([raw(tag), Buffer.from('.\r\n')]));
    const reply = await client.readReply();
    expect(reply.code).toBe(250);
    await client.command('QUIT');
    return /queued as (\S+)/.exec(reply.text)![1]!;
  } finally {
    client.close();
  }
}

/** DSNs from <> about queue id `id` with the given RFC 3464 action, as the sender's mailbox got them. */
function reports(world: World, id: string, action: string): ReceivedMessage[] {
  return world.mailbox('sender.test').received.filter((m) => m.mailFrom === '' && m.raw.includes(`X-Sealgate-Queue-ID: ${id}`) && m.raw.includes(`Action: ${action}`));
}

async function attemptsOf(store: Store, id: string): Promise<number> {
  return (await store.getMessage(id))?.jobs[0]?.attempts ?? 0;
}

describe('delay warnings and NOTIFY end to end', () => {
  let world: World;
  let fixture: RelayFixture;
  let relay: RelayProcess;
  let store: Store;

  beforeAll(async () => {
    world = await startWorld(standardScenarios());
    fixture = relayFixture({
      ...world.relayConfig(),
      delivery: { retrySchedule: ['400ms'], pollInterval: '100ms', delayWarning: `${DELAY_WARNING_MS}ms`, maxQueueTime: '1h' },
    });
    relay = await startRelayProcess(fixture.configFile);
    const { config } = loadConfig(fixture.configFile, {});
    store = createStore(config, silentLogger());
    await store.open();
  });

  afterAll(async () => {
    await store?.close();
    await relay?.stop();
    await world?.stop();
    fixture?.remove();
  });

  test('a recipient still deferred gets exactly one delayed DSN across several retries; NOTIFY=NEVER gets none', async () => {
    const warned = await submit(relay.ports.smarthost!, DEFERRED_RECIPIENT, 'delay-default');
    const never = await submit(relay.ports.smarthost!, DEFERRED_RECIPIENT, 'delay-never', 'NEVER');

    const dsn = await world.mailbox('sender.test').waitFor((m) => m.mailFrom === '' && m.raw.includes(`X-Sealgate-Queue-ID: ${warned}`), 20_000);
    const text = dsn.raw.toString('utf8');
    expect(dsn.rcptTo).toEqual(['clinic@sender.test']);
    expect(text).toMatch(/^Subject: Delayed Mail \(still being retried\)/m);
    expect(text).toContain('Action: delayed');
    expect(text).toMatch(/Status: 4\.\d+\.\d+/);
    expect(text).toContain(`Final-Recipient: rfc822; ${DEFERRED_RECIPIENT}`);
    expect(text).toContain('Will-Retry-Until: ');
    expect(text).toContain('Subject: results delay-default');
    expect(text).not.toContain('private body');

    // Several more retries, each still deferred: no second warning, for either message.
    const attemptsAtWarning = await attemptsOf(store, warned);
    await until(
      'three more retries of both messages',
      async () => ((await attemptsOf(store, warned)) >= attemptsAtWarning + 3 && (await attemptsOf(store, never)) >= attemptsAtWarning + 2) || undefined,
      20_000,
    );
    expect(reports(world, warned, 'delayed')).toHaveLength(1);
    expect(reports(world, never, 'delayed')).toHaveLength(0);
    expect(world.mailbox('sender.test').received.filter((m) => m.raw.includes(`X-Sealgate-Queue-ID: ${never}`))).toHaveLength(0);

    // The flag is in the store, so a restarted relay does not warn again either.
    await relay.stop();
    relay = await startRelayProcess(fixture.configFile);
    const attemptsBeforeRestart = await attemptsOf(store, warned);
    await until('two retries after the restart', async () => (await attemptsOf(store, warned)) >= attemptsBeforeRestart + 2 || undefined, 20_000);
    expect(reports(world, warned, 'delayed')).toHaveLength(1);

    const [warnedRecipient] = (await store.getMessage(warned))!.jobs[0]!.recipients;
    const [neverRecipient] = (await store.getMessage(never))!.jobs[0]!.recipients;
    expect(warnedRecipient).toMatchObject({ state: 'pending', delayWarnedAt: expect.any(Number) });
    expect(neverRecipient).toMatchObject({ state: 'pending', notify: ['NEVER'] });
    expect(neverRecipient!.delayWarnedAt).toBeUndefined();
  }, 60_000);

  test('NOTIFY=SUCCESS: a relayed DSN once the MX accepted, when the next hop could not be handed that NOTIFY', async () => {
    const id = await submitRaw(relay.ports.smarthost!, ['<ok@tls13.test> NOTIFY=SUCCESS ORCPT=rfc822;ok@tls13.test', '<quiet@tls13.test> NOTIFY=NEVER'], 'success');
    const dsn = await world.mailbox('sender.test').waitFor((m) => m.mailFrom === '' && m.raw.includes(`X-Sealgate-Queue-ID: ${id}`), 20_000);
    const text = dsn.raw.toString('utf8');
    expect(text).toMatch(/^Subject: Successful Mail Delivery Report/m);
    expect(text).toContain('Original-Envelope-Id: env-success');
    expect(text).toContain('Final-Recipient: rfc822; ok@tls13.test');
    expect(text).toContain('Original-Recipient: rfc822; ok@tls13.test');
    expect(text).toContain('Action: relayed');
    expect(text).toMatch(/Status: 2\.\d+\.\d+/);
    expect(text).toContain('Remote-MTA: dns; mx1.tls13.test');
    expect(text).not.toContain('Final-Recipient: rfc822; quiet@tls13.test');
    expect(text).not.toContain('private body');
    expect(world.mx('mx1.tls13.test').received.some((m) => m.rcptTo.includes('ok@tls13.test'))).toBe(true);
    const message = (await store.getMessage(id))!;
    expect(message.jobs[0]!.recipients.map((r) => r.state)).toEqual(['delivered', 'delivered']);
  }, 30_000);
});
