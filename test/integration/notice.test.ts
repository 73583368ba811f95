import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { dkimVerify } from 'mailauth';
import { simpleParser } from 'mailparser';
import { loadConfig } from '../../src/config/load';
import { silentLogger } from '../../src/log/logger';
import { createNoticeSender, type NoticeSender } from '../../src/portal/notices';
import { createStore } from '../../src/store';
import type { MessageRecord, Store } from '../../src/store/types';
import { relayFixture, startRelayProcess, type RelayFixture, type RelayProcess } from '../support/relay-process';
import { standardScenarios, startWorld, type World } from '../support/world';

/**
 * Portal notices through the real relay process into the test world: queued by createNoticeSender
 * into the relay's store, delivered with opportunistic TLS to MX hosts that regular mail never
 * reaches (no STARTTLS, TLS 1.1 only, a portal-level domain), DKIM-signed, with evidence.
 */

const CANARY = 'CANARY-Heron-9044';

async function waitForFinal(store: Store, id: string, timeoutMs: number): Promise<MessageRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const message = await store.getMessage(id);
    if (message && message.jobs.every((j) => ['delivered', 'diverted', 'bounced'].includes(j.state))) return message;
    if (Date.now() > deadline) throw new Error(`not final in time: ${JSON.stringify(message?.jobs.map((j) => [j.domain, j.state, j.lastReason]))}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('portal notices, end to end', () => {
  let world: World;
  let fixture: RelayFixture;
  let relay: RelayProcess;
  let store: Store;
  let notices: NoticeSender;
  let dkimTxt: string;

  beforeAll(async () => {
    world = await startWorld(standardScenarios());
    fixture = relayFixture({
      ...world.relayConfig(),
      delivery: { retrySchedule: ['1s'], pollInterval: '200ms' },
      domains: { 'tls13.test': { level: 'portal' } },
      portal: {
        enabled: false,
        port: 0,
        organisation: 'Riverside Clinic',
        publicUrl: 'https://portal.relay.test',
        noticeFrom: 'portal@relay.test',
        dkim: { domain: 'relay.test', selector: 'notices', keyFile: 'dkim.pem' },
      },
    });
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyFile = path.join(fixture.dir, 'dkim.pem');
    writeFileSync(keyFile, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    dkimTxt = `v=DKIM1; k=rsa; p=${pair.publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`;
    // The notice sender runs in this process on the relay's store; the relay process delivers.
    relay = await startRelayProcess(fixture.configFile);
    const { config } = loadConfig(fixture.configFile, {});
    store = createStore(config, silentLogger());
    await store.open();
    notices = createNoticeSender({ config, store, logger: silentLogger() });
  });

  afterAll(async () => {
    await store?.close();
    await relay?.stop();
    await world?.stop();
    fixture?.remove();
  });

  test('a notice to an MX without STARTTLS arrives in plaintext, signed, with notice-delivered evidence', async () => {
    const id = await notices.send({
      kind: 'portal-link',
      itemId: 'item-1',
      to: 'patient@nostarttls.test',
      link: 'https://portal.relay.test/m/abc',
      expiresAt: Date.now() + 86_400_000,
      originalSubject: CANARY,
    });
    const message = await waitForFinal(store, id, 30_000);
    expect(message.params.notice).toEqual({ itemId: 'item-1', kind: 'portal-link' });
    const recipient = message.jobs[0]!.recipients[0]!;
    expect(recipient.state).toBe('delivered');
    expect(recipient.history.at(-1)).toMatchObject({
      outcome: 'delivered',
      reason: 'notice-delivered',
      mx: 'mx1.nostarttls.test',
      tls: { protocol: 'plaintext', cipher: null, group: null },
      opportunistic: true,
    });

    const received = await world.mx('mx1.nostarttls.test').waitFor((m) => m.rcptTo.includes('patient@nostarttls.test'), 10_000);
    expect(received.tls).toBeNull();
    expect(received.mailFrom).toBe('portal@relay.test');
    const parsed = await simpleParser(received.raw);
    expect(parsed.headers.get('auto-submitted')).toBe('auto-generated');
    expect(parsed.subject).toBe('Secure message from Riverside Clinic');
    expect(parsed.text).toContain('https://portal.relay.test/m/abc');
    expect(parsed.text).toContain('the link goes to portal.relay.test');
    expect(parsed.headers.has('dkim-signature')).toBe(true);
    expect(received.raw.toString()).not.toContain(CANARY);
    const resolver = async (name: string, rrtype: string) => {
      if (rrtype === 'TXT' && name === 'notices._domainkey.relay.test') return [[dkimTxt]];
      throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    };
    // The relay adds nothing the signature covers: it still verifies at the MX.
    expect((await dkimVerify(received.raw, { resolver })).results.map((r) => r.status.result)).toEqual(['pass']);
  }, 60_000);

  test('a notice to a TLS-1.1-only MX goes over the permissive retry; one to a portal-level domain is still delivered', async () => {
    const old = await notices.send({ kind: 'otp-code', itemId: 'item-2', to: 'patient@tls11.test', code: '123456', validForMs: 600_000 });
    const portalLevel = await notices.send({ kind: 'expiry-reminder', itemId: 'item-3', to: 'patient@tls13.test', link: 'https://portal.relay.test/m/def', expiresAt: Date.now() + 86_400_000 });
    const oldRecord = await waitForFinal(store, old, 30_000);
    expect(oldRecord.jobs[0]!.recipients[0]!.history.at(-1)).toMatchObject({ outcome: 'delivered', reason: 'notice-delivered', tls: { protocol: 'TLSv1.1' }, protection: 'permissive' });
    expect((await world.mx('mx1.tls11.test').waitFor((m) => m.rcptTo.includes('patient@tls11.test'), 10_000)).tls).toMatchObject({ protocol: 'TLSv1.1' });
    const portalRecord = await waitForFinal(store, portalLevel, 30_000);
    expect(portalRecord.jobs[0]!.recipients[0]!.history.at(-1)).toMatchObject({ outcome: 'delivered', reason: 'notice-delivered', tls: { protocol: 'TLSv1.3' }, protection: 'profile' });
  }, 60_000);
});
