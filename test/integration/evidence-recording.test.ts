import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { AuditEntry } from '../../src/evidence/delivery';
import { searchEvidence } from '../../src/evidence/search';
import { verifyEvidence } from '../../src/store/evidence-chain';
import type { EvidenceQuery, EvidenceRecord, Store } from '../../src/store/types';
import { runCli, type RelayFixture, type RelayProcess } from '../support/relay-process';
import { REJECTED_RECIPIENT, standardScenarios } from '../support/world';
import { submit } from '../support/submit';
import { waitForFinal } from '../support/wait';
import { startWorldRelay, type WorldRelay } from '../support/world-relay';

/**
 * The evidence log end to end, through the real relay process and the test world: outcomes (delivered, diverted,
 * bounced), admin actions from the API and the CLI and portal events are written to it; deleting and purging the
 * messages leaves every outcome, with its TLS facts, for `sealgate audit` and `sealgate evidence search`.
 */

const TOKEN = 'evidence-test-token-0123456789';
const KEEP_FINISHED_MS = 3_000;

function raw(tag: string): Buffer {
  return Buffer.from(`From: Clinic <clinic@sender.test>\r\nTo: undisclosed-recipients:;\r\nSubject: private ${tag}\r\nMessage-ID: <${tag}@sender.test>\r\n\r\nResults ${tag}\r\n`);
}

describe('evidence recording end to end (file store)', () => {
  let setup: WorldRelay | undefined;
  let fixture: RelayFixture;
  let relay: RelayProcess;
  let store: Store;
  let adminBase: string;

  const cli = async (...args: string[]) => {
    const result = await runCli(['--config', fixture.configFile, ...args]);
    if (result.code !== 0) throw new Error(`sealgate ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
    return result.stdout;
  };
  const search = async (...args: string[]) => (JSON.parse(await cli('evidence', 'search', '--json', ...args)) as { records: EvidenceRecord[] }).records;
  // In-process look-ups over the same log, where the CLI is not what a check is about (each CLI run costs seconds).
  const query = async (q: EvidenceQuery) => (await searchEvidence(store, { limit: 10_000, ...q })).records;
  const api = async (method: string, url: string) => {
    const response = await fetch(`${adminBase}${url}`, { method, headers: { authorization: `Bearer ${TOKEN}` } });
    return { status: response.status, body: (await response.json()) as Record<string, any> };
  };

  beforeAll(async () => {
    setup = await startWorldRelay(standardScenarios(), {
      config: {
        audit: { file: 'audit.log' },
        queue: { path: 'queue', keepFinished: `${KEEP_FINISHED_MS / 1000}s` },
        admin: { port: 0, tokens: [{ name: 'ops', token: TOKEN, scopes: ['read', 'operate'] }] },
        portal: { enabled: true, port: 0, organisation: 'Test Clinic' },
      },
    });
    ({ fixture, relay, store } = setup);
    adminBase = `http://127.0.0.1:${Number(relay.logs.find((l) => l.event === 'admin-started')?.port)}`;
  });

  afterAll(async () => {
    await setup?.stop();
  });

  test('outcomes, admin actions and portal events are in the log; deleted and purged messages keep every outcome', async () => {
    // A: delivered (then deleted by the CLI). B: diverted (handed to the portal) and bounced (then purged).
    const a = await submit(relay.ports.smarthost!, ['patient@tls13.test'], raw('evidence-a'));
    const b = await submit(relay.ports.smarthost!, ['patient@nostarttls.test', REJECTED_RECIPIENT], raw('evidence-b'));
    await waitForFinal(store, a, 30_000);
    await cli('queue', 'delete', a);
    const finalB = await waitForFinal(store, b, 30_000);
    expect(Object.fromEntries(finalB.jobs.flatMap((j) => j.recipients.map((r) => [r.address, r.state])))).toEqual({ 'patient@nostarttls.test': 'diverted', [REJECTED_RECIPIENT]: 'bounced' });

    // The portal takes the diverted recipient over: its trail is mirrored into the log.
    let portalEvents: EvidenceRecord[] = [];
    for (const deadline = Date.now() + 20_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
      portalEvents = await query({ queueId: b, kinds: ['portal-event'] });
      if (portalEvents.some((r) => r.data.type === 'notify.sent')) break;
    }
    expect(portalEvents.map((r) => r.data.type)).toEqual(expect.arrayContaining(['portal.stored', 'notify.sent']));
    for (const r of portalEvents) expect(r).toMatchObject({ kind: 'portal-event', queueId: b, recipient: 'patient@nostarttls.test', sender: 'clinic@sender.test' });
    const itemId = String(portalEvents[0]!.data.itemId);

    // Admin actions: one from the API (answered 200 only once recorded), one from the CLI on the portal item.
    expect((await api('POST', '/api/v1/queue/flush')).status).toBe(200);
    await cli('portal', 'extend', itemId, '--by', '1d');

    // Purge: past keepFinished, a sweep removes both records (A's evidence-only record and B).
    await new Promise((r) => setTimeout(r, KEEP_FINISHED_MS + 200));
    await store.sweep();
    expect(await store.getMessage(a)).toBeUndefined();
    expect(await store.getMessage(b)).toBeUndefined();

    // `sealgate audit ID` still shows every outcome with its TLS facts, from the evidence log.
    const auditA = JSON.parse(await cli('audit', a, '--json')) as AuditEntry[];
    expect(auditA).toEqual([
      expect.objectContaining({
        queueId: a,
        messageId: '<evidence-a@sender.test>',
        recipient: 'patient@tls13.test',
        outcome: 'delivered',
        mx: 'mx1.tls13.test',
        tls: expect.objectContaining({ protocol: 'TLSv1.3' }),
      }),
    ]);
    expect(auditA[0]!.certificate).toMatchObject({ trusted: true, nameMatch: true });
    const textA = await cli('audit', a);
    expect(textA).toMatch(new RegExp(`Message ${a} <evidence-a@sender.test> from clinic@sender.test.*message record deleted .* by cli:.*; from the evidence log`));
    expect(textA).toContain('TLS TLSv1.3');
    const textB = await cli('audit', '<evidence-b@sender.test>');
    expect(textB).toContain('message record deleted/purged; from the evidence log');
    expect(textB).toMatch(/patient@nostarttls\.test {2}DIVERTED/);
    expect(textB).toMatch(/reject@rcpt550\.test {2}BOUNCED/);
    expect(textB).toContain(`Portal item ${itemId}`);
    const byRecipient = JSON.parse(await cli('audit', '--recipient', 'patient@tls13.test', '--json')) as Array<Record<string, any>>;
    expect(byRecipient).toEqual([expect.objectContaining({ queueId: a, state: 'delivered', recordGone: true })]);

    // The admin API answers the same, never "no message".
    const apiAudit = await api('GET', `/api/v1/audit/${b}`);
    expect(apiAudit.status).toBe(200);
    expect(apiAudit.body.messages).toEqual([expect.objectContaining({ id: b, messageId: '<evidence-b@sender.test>', recordGone: true, deletedAt: null })]);
    expect((apiAudit.body.entries as AuditEntry[]).map((e) => [e.recipient, e.outcome])).toEqual(
      expect.arrayContaining([
        ['patient@nostarttls.test', 'diverted'],
        [REJECTED_RECIPIENT, 'bounced'],
      ]),
    );
    const apiSearch = await api('GET', `/api/v1/evidence?queueId=${a}&kind=recipient-outcome`);
    expect(apiSearch.body).toMatchObject({ count: 1, truncated: false, records: [{ kind: 'recipient-outcome', queueId: a, recipient: 'patient@tls13.test', data: { tls: { protocol: 'TLSv1.3' } } }] });
    expect((await api('GET', '/api/v1/evidence?kind=mail-body')).status).toBe(400);

    // `sealgate evidence search`: the outcomes with their TLS facts, and who acted.
    const recordsA = await search('--queue-id', a);
    expect(recordsA.map((r) => [r.kind, r.actor])).toEqual([
      ['recipient-outcome', 'relay'],
      ['admin-action', expect.stringMatching(/^cli:/)],
    ]);
    expect(recordsA[1]!.data).toMatchObject({ action: 'queue-delete', id: a });
    const outcomesB = await query({ messageId: '<evidence-b@sender.test>', kinds: ['recipient-outcome'] });
    expect(outcomesB.map((r) => [r.recipient, r.data.outcome])).toEqual(
      expect.arrayContaining([
        ['patient@nostarttls.test', 'diverted'],
        [REJECTED_RECIPIENT, 'bounced'],
      ]),
    );
    const actions = await query({ kinds: ['admin-action'] });
    expect(actions.map((r) => [r.actor, r.data.action])).toEqual(
      expect.arrayContaining([
        ['admin:ops', 'queue-flush'],
        [expect.stringMatching(/^cli:/), 'portal-extend'],
      ]),
    );
    expect(actions.find((r) => r.data.action === 'portal-extend')).toMatchObject({ queueId: b });
    expect((await query({ queueId: b, kinds: ['portal-event'] })).map((r) => r.data.type)).toContain('admin.extend');
    expect(await cli('evidence', 'search', '--domain', 'tls13.test')).toMatch(/recipient-outcome +relay .*DELIVERED \(delivered\) via mx1\.tls13\.test/);

    // The audit file is still the plain mirror: the same outcome and admin-action lines as before.
    const mirror = readFileSync(path.join(fixture.dir, 'audit.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, any>);
    expect(mirror.filter((l) => l.event === 'audit').map((l) => [l.audit.queueId, l.audit.recipient, l.audit.outcome])).toEqual(
      expect.arrayContaining([
        [a, 'patient@tls13.test', 'delivered'],
        [b, 'patient@nostarttls.test', 'diverted'],
        [b, REJECTED_RECIPIENT, 'bounced'],
      ]),
    );
    expect(mirror.filter((l) => l.event === 'admin-action').map((l) => l.admin.action)).toEqual(expect.arrayContaining(['queue-delete', 'queue-flush', 'portal-extend']));

    // No content reached the log, and its chain holds.
    const everything = await query({});
    expect(JSON.stringify(everything)).not.toMatch(/private evidence|Results evidence/);
    expect(await verifyEvidence(store)).toMatchObject({ ok: true, firstBroken: null });
    const verified = JSON.parse(await cli('evidence', 'verify', '--json')) as { ok: boolean; evidence: { ok: boolean; records: number } };
    expect(verified).toMatchObject({ ok: true, evidence: { ok: true } });
    // The relay may have appended since (the bounce's DSN, notices): never fewer.
    expect(verified.evidence.records).toBeGreaterThanOrEqual(everything.length);
  }, 240_000);
});
