import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { AuditEntry } from '../../src/evidence/delivery';
import type { Store } from '../../src/store/types';
import { runCli, type RelayFixture, type RelayProcess } from '../support/relay-process';
import { REJECTED_RECIPIENT, standardScenarios, type World } from '../support/world';
import { submit } from '../support/submit';
import { waitForFinal } from '../support/wait';
import { startWorldRelay, type WorldRelay } from '../support/world-relay';

/**
 * One message to recipients in many scenario domains, through the real relay process, into the
 * test world: each recipient must end with the outcome the policy demands, with evidence.
 */

const EXPECTED: Record<string, 'delivered' | 'diverted' | 'bounced'> = {
  'patient@tls13.test': 'delivered',
  'patient@tls12.test': 'delivered',
  'patient@tls11.test': 'diverted',
  'patient@nostarttls.test': 'diverted',
  'patient@chacha.test': 'diverted',
  'patient@sts-badcert.test': 'diverted',
  'patient@sts-mismatch.test': 'diverted',
  'patient@sts-enforce.test': 'delivered',
  'patient@secondmx.test': 'delivered',
  'patient@tempfail.test': 'delivered',
  'patient@selfsigned.test': 'delivered',
  'patient@implicitmx.test': 'delivered',
  [REJECTED_RECIPIENT]: 'bounced',
  'patient@nullmx.test': 'bounced',
};

function raw(tag: string): Buffer {
  return Buffer.from(
    `From: Clinic <clinic@sender.test>\r\nTo: undisclosed-recipients:;\r\nSubject: private ${tag}\r\nMessage-ID: <${tag}@sender.test>\r\nMIME-Version: 1.0\r\n` +
      `Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nResults for caf\u00e9 \u2713\r\n${'x'.repeat(5000)}\r\n`,
  );
}

describe('delivery end to end', () => {
  let setup: WorldRelay | undefined;
  let world: World;
  let fixture: RelayFixture;
  let relay: RelayProcess;
  let store: Store;

  beforeAll(async () => {
    setup = await startWorldRelay(standardScenarios(), { config: { audit: { file: 'audit.log' } } });
    ({ world, fixture, relay, store } = setup);
  });

  afterAll(async () => {
    await setup?.stop();
  });

  test('every recipient ends with the outcome its domain demands, with evidence', async () => {
    const body = raw('scenarios');
    const id = await submit(relay.ports.smarthost!, Object.keys(EXPECTED), body);
    const message = await waitForFinal(store, id, 45_000);

    const outcomes = Object.fromEntries(message.jobs.flatMap((j) => j.recipients.map((r) => [r.address, r.state])));
    expect(outcomes).toEqual(EXPECTED);

    // What arrived is exactly what was stored (the relay's Received header included), over the TLS we expect.
    const stored = Buffer.concat(
      await (async () => {
        const c: Buffer[] = [];
        for await (const x of await store.openBody(id)) c.push(x as Buffer);
        return c;
      })(),
    );
    const tls13 = world.mx('mx1.tls13.test').received.find((m) => m.rcptTo.includes('patient@tls13.test'))!;
    expect(tls13.raw.equals(stored)).toBe(true);
    expect(tls13.tls).toMatchObject({ protocol: 'TLSv1.3', servername: 'mx1.tls13.test' });
    const tls12 = world.mx('mx1.tls12.test').received.find((m) => m.rcptTo.includes('patient@tls12.test'))!;
    expect(tls12.raw.equals(stored)).toBe(true);
    expect(tls12.tls).toMatchObject({ protocol: 'TLSv1.2', cipher: 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256' });
    expect(world.mx('mx2.secondmx.test').received).toHaveLength(1);
    expect(world.mx('mx1.secondmx.test').received).toHaveLength(0);
    // Nothing ever reached a non-compliant MX.
    for (const host of ['mx1.tls11.test', 'mx1.nostarttls.test', 'mx1.chacha.test', 'mx1.sts-badcert.test', 'mx1.sts-mismatch.test']) {
      expect(world.mx(host).received).toHaveLength(0);
    }

    // 451 once: deferred first, delivered on the retry.
    const tempfail = message.jobs.find((j) => j.domain === 'tempfail.test')!.recipients[0]!;
    expect(tempfail.history.map((h) => h.outcome)).toEqual(['deferred', 'delivered']);

    // Bounces produce DSNs that reach the sender's mailbox (550 and null MX), with headers only.
    const dsns = await world.mailbox('sender.test').waitFor((m) => m.mailFrom === '' && m.raw.includes('5.1.10'), 20_000);
    expect(dsns.raw.toString()).toMatch(/multipart\/report/);
    const dsn550 = await world.mailbox('sender.test').waitFor((m) => m.mailFrom === '' && m.raw.includes(REJECTED_RECIPIENT), 20_000);
    expect(dsn550.raw.toString()).toMatch(/Status: 5\.\d\.\d/);
    for (const dsn of [dsns, dsn550]) expect(dsn.raw.toString()).not.toContain('x'.repeat(100));

    // Fallback items exist for the diverted recipients.
    const fallback = await runCli(['--config', fixture.configFile, 'fallback', 'list', '--json']);
    expect(fallback.code).toBe(0);
    const items = JSON.parse(fallback.stdout) as Array<Record<string, unknown>>;
    const diverted = Object.entries(EXPECTED)
      .filter(([, o]) => o === 'diverted')
      .map(([a]) => a);
    expect(items.map((i) => i.recipient).sort()).toEqual(diverted.sort());
    for (const item of items) {
      expect(item).toMatchObject({ queueId: id, messageId: '<scenarios@sender.test>', from: 'clinic@sender.test' });
      expect(typeof item.reason).toBe('string');
      expect(Number.isNaN(Date.parse(String(item.divertedAt)))).toBe(false);
    }

    // Audit evidence, by Message-ID.
    const audit = await runCli(['--config', fixture.configFile, 'audit', '<scenarios@sender.test>', '--json']);
    expect(audit.code).toBe(0);
    const entries = JSON.parse(audit.stdout) as AuditEntry[];
    const delivered13 = entries.find((e) => e.recipient === 'patient@tls13.test' && e.outcome === 'delivered')!;
    expect(delivered13).toMatchObject({ mx: 'mx1.tls13.test', tls: { protocol: 'TLSv1.3', group: 'P-256' }, policy: { source: 'default', level: 'encrypt' } });
    expect(delivered13.certificate).toMatchObject({ trusted: true, nameMatch: true });
    expect(delivered13.reply).toMatch(/^250/);
    const enforced = entries.find((e) => e.recipient === 'patient@sts-enforce.test')!;
    expect(enforced.policy).toMatchObject({ source: 'mta-sts', mode: 'enforce' });
    const nostarttls = entries.find((e) => e.recipient === 'patient@nostarttls.test')!;
    expect(nostarttls.outcome).toBe('diverted');
    expect(nostarttls.mxAttempts[0]).toMatchObject({ mx: 'mx1.nostarttls.test', class: 'non-compliant', code: 'starttls-not-offered' });
    expect(nostarttls.reason).toBe('starttls-not-offered');
    expect(entries.find((e) => e.recipient === 'patient@chacha.test')!.reason).toBe('tls-handshake-failed');
    expect(entries.find((e) => e.recipient === 'patient@sts-badcert.test')!.reason).toBe('certificate-untrusted');
    const text = await runCli(['--config', fixture.configFile, 'audit', id]);
    expect(text.stdout).toMatch(/patient@tls13\.test\s+DELIVERED/);

    // SEALGATE_SCENARIO_TABLE=file writes the per-scenario outcome table (for release notes and docs).
    if (process.env.SEALGATE_SCENARIO_TABLE) {
      const rows = Object.keys(EXPECTED).map((recipient) => {
        const last = entries.filter((e) => e.recipient === recipient).at(-1)!;
        const tls = last.tls ? `${last.tls.protocol} ${last.tls.cipher} ${last.tls.group ?? ''}`.trim() : '-';
        const tried = last.mxAttempts
          .filter((a) => a.class !== 'ok')
          .map((a) => `${a.mx}: ${a.code}: ${a.reason}`)
          .join('; ');
        return `| ${recipient} | ${last.outcome} | ${last.reason} | ${last.mx ?? '-'} | ${tls} | ${last.policy?.source ?? '-'}${last.policy?.mode ? ` (${last.policy.mode})` : ''} | ${(last.reply ?? tried ?? '-').replace(/\|/g, '/').slice(0, 90)} |`;
      });
      writeFileSync(process.env.SEALGATE_SCENARIO_TABLE, ['| recipient | outcome | reason | MX | TLS | policy | reply / why |', '|---|---|---|---|---|---|---|', ...rows].join('\n') + '\n');
    }

    // No subject or body in the relay's logs.
    expect(JSON.stringify(relay.logs)).not.toContain('private scenarios');

    // The audit file holds one line per recipient outcome, with its evidence.
    const auditLines = readFileSync(path.join(fixture.dir, 'audit.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; audit: AuditEntry });
    const forThis = auditLines.filter((l) => l.event === 'audit' && l.audit.queueId === id);
    expect(forThis.find((l) => l.audit.recipient === 'patient@tls13.test')?.audit).toMatchObject({ outcome: 'delivered', tls: { protocol: 'TLSv1.3' } });
    expect(readFileSync(path.join(fixture.dir, 'audit.log'), 'utf8')).not.toContain('private scenarios');
  }, 90_000);

  test('a TLS-Required: No header does not lower the policy', async () => {
    const body = Buffer.from('From: clinic@sender.test\r\nTo: patient@sts-badcert.test\r\nSubject: private tlsno\r\nMessage-ID: <tlsno@sender.test>\r\nTLS-Required: No\r\n\r\nbody\r\n');
    const id = await submit(relay.ports.smarthost!, ['patient@sts-badcert.test', 'patient@nostarttls.test'], body);
    const message = await waitForFinal(store, id, 30_000);
    expect(message.headers.tlsRequired).toBe('No');
    const states = Object.fromEntries(message.jobs.flatMap((j) => j.recipients.map((r) => [r.address, r.state])));
    expect(states).toEqual({ 'patient@sts-badcert.test': 'diverted', 'patient@nostarttls.test': 'diverted' });
    expect(world.mx('mx1.sts-badcert.test').received).toHaveLength(0);
    expect(relay.logs.some((l) => l.event === 'tls-required-no-ignored' && l.queueId === id)).toBe(true);
  }, 60_000);
});

describe.each(['divert', 'bounce'] as const)('a message still deferred at maxQueueTime (onExpiry: %s)', (onExpiry) => {
  let setup: WorldRelay | undefined;
  let world: World;
  let relay: RelayProcess;
  let store: Store;

  beforeAll(async () => {
    setup = await startWorldRelay(standardScenarios(), { config: { delivery: { retrySchedule: ['500ms'], pollInterval: '100ms', maxQueueTime: '2s', onExpiry } } });
    ({ world, relay, store } = setup);
  });

  afterAll(async () => {
    await setup?.stop();
  });

  test(`is ${onExpiry === 'divert' ? 'diverted' : 'bounced'} once it has waited too long`, async () => {
    // servfail.test: the MX lookup fails temporarily on every attempt, so the recipient keeps deferring.
    const id = await submit(relay.ports.smarthost!, ['patient@servfail.test'], raw(`expiry-${onExpiry}`));
    const message = await waitForFinal(store, id, 20_000);
    const recipient = message.jobs[0]!.recipients[0]!;
    expect(recipient.state).toBe(onExpiry === 'divert' ? 'diverted' : 'bounced');
    expect(recipient.history.slice(0, -1).every((h) => h.outcome === 'deferred')).toBe(true);
    expect(recipient.history.at(-1)).toMatchObject({ reason: 'queue-time-expired' });
    if (onExpiry === 'bounce') {
      const dsn = await world.mailbox('sender.test').waitFor((m) => m.mailFrom === '' && m.raw.includes(`expiry-bounce@sender.test`), 15_000);
      expect(dsn.raw.toString()).toMatch(/Status: 4\.4\.7/);
    } else {
      const items = await store.listFallback();
      expect(items.find((i) => i.queueId === id)).toMatchObject({ recipient: 'patient@servfail.test', reason: 'queue-time-expired' });
    }
  }, 40_000);
});
