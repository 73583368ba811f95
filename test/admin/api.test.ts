import net from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { VERSION } from '../../src/config/version';
import { relayFixture, startRelayProcess } from '../support/relay-process';
import { sample } from '../support/prometheus';
import type { World } from '../support/world';
import { BACKENDS, TOKEN, TOKEN_NAME, fixDomain, fixTheDomain, readAll, sleep, startRig, startRigWorld, type Rig } from './rig';

/** The admin HTTP API over real HTTP against a running relay process, on both store backends. */

let world: World;

beforeAll(async () => {
  world = await startRigWorld();
});

afterAll(async () => {
  await world?.stop();
});

test('the relay refuses an admin listener on a non-loopback address without a token', async () => {
  const fixture = relayFixture({ admin: { host: '0.0.0.0', port: 0 } });
  try {
    await expect(startRelayProcess(fixture.configFile, { SEALGATE_ADMIN_TOKEN: '' })).rejects.toThrow(/admin\.host is 0\.0\.0\.0.*no admin token/);
  } finally {
    fixture.remove();
  }
});

describe.each(BACKENDS)('admin API with the %s store', (backend) => {
  let rig: Rig;

  beforeAll(async () => {
    rig = await startRig(backend, world);
  });

  afterAll(async () => {
    await rig?.stop();
  });

  test('every route but /healthz and /readyz needs a valid bearer token', async () => {
    expect((await rig.api('GET', '/healthz', { token: null })).status).toBe(200);
    const probe = await rig.api('GET', '/readyz', { token: null });
    expect(probe.status).toBe(200);
    expect(probe.json).toEqual({ ready: true, version: expect.any(String) });
    for (const path of ['/api/v1/stats', '/api/v1/queue', '/metrics', '/openapi.json']) {
      const missing = await rig.api('GET', path, { token: null });
      expect(missing.status).toBe(401);
      expect(missing.json).toMatchObject({ error: 'unauthorized' });
      expect((await rig.api('GET', path, { token: 'wrong-token-0123456789' })).status).toBe(401);
    }
    const ready = await rig.api('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json).toMatchObject({ ready: true, checks: { store: { ok: true } } });
    const metrics = await rig.api('GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(metrics.text).toContain('# HELP');
    const openapi = await rig.api('GET', '/openapi.json');
    expect(openapi.json.openapi).toMatch(/^3\./);
    expect(Object.keys(openapi.json.paths)).toEqual(expect.arrayContaining(['/api/v1/queue', '/api/v1/queue/{id}/hold', '/api/v1/portal/claim', '/api/v1/audit/{id}']));
  });

  test('bad requests get 400 naming the field, unknown ids 404', async () => {
    const cases: Array<[string, string, unknown, string]> = [
      ['GET', '/api/v1/queue?limit=0', undefined, 'limit'],
      ['GET', '/api/v1/queue?state=lost', undefined, 'state'],
      ['GET', '/api/v1/queue?olderThan=yesterday', undefined, 'olderThan'],
      ['GET', '/api/v1/queue?colour=red', undefined, 'colour'],
      ['GET', '/api/v1/fallback?state=gone', undefined, 'state'],
      ['POST', '/api/v1/portal/claim', {}, 'owner'],
      ['POST', '/api/v1/portal/claim', { owner: 'p', limit: 'many' }, 'limit'],
      ['POST', '/api/v1/portal/items/x/ack', {}, 'owner'],
      ['GET', '/api/v1/check/not_a_domain!', undefined, 'domain'],
    ];
    for (const [method, path, body, field] of cases) {
      const response = await rig.api(method, path, { body });
      expect({ path, status: response.status, field: response.json.field }).toEqual({ path, status: 400, field });
      expect(response.json.error).toBe('bad-request');
    }
    for (const [method, path] of [
      ['GET', '/api/v1/queue/nosuchid'],
      ['POST', '/api/v1/queue/nosuchid/hold'],
      ['POST', '/api/v1/queue/nosuchid/retry'],
      ['DELETE', '/api/v1/queue/nosuchid'],
      ['GET', '/api/v1/fallback/nosuchid'],
      ['POST', '/api/v1/fallback/nosuchid/release'],
      ['DELETE', '/api/v1/fallback/nosuchid'],
      ['GET', '/api/v1/portal/items/nosuchid/body'],
      ['GET', '/api/v1/audit/%3Cnobody%40nowhere.test%3E'],
      ['GET', '/api/v1/nothing-here'],
    ] as const) {
      const response = await rig.api(method, path);
      expect({ path, status: response.status }).toEqual({ path, status: 404 });
    }
  });

  test('hold keeps a message from delivery (also after retry), release lets it go, invalid changes are 409', async () => {
    const { id, messageId } = await rig.submit(['patient@tempfail.test'], 'hold');
    await rig.waitForMessage(id, (m) => m.state === 'deferred');

    const held = await rig.api('POST', `/api/v1/queue/${id}/hold`);
    expect(held.status).toBe(200);
    expect(held.json.message.state).toBe('held');
    expect((await rig.api('POST', `/api/v1/queue/${id}/hold`)).status).toBe(409);
    // Retry on a held message keeps it held (due at once when released).
    expect((await rig.api('POST', `/api/v1/queue/${id}/retry`)).json.message.state).toBe('held');
    await sleep(1500); // several delivery polls
    expect((await rig.api('GET', `/api/v1/queue/${id}`)).json.state).toBe('held');
    expect(world.mx('mx1.tempfail.test').received.filter((m) => m.raw.includes(messageId))).toHaveLength(0);

    const released = await rig.api('POST', `/api/v1/queue/${id}/release`);
    expect(released.status).toBe(200);
    expect((await rig.api('POST', `/api/v1/queue/${id}/release`)).status).toBe(409);
    const delivered = await rig.waitForMessage(id, (m) => m.state === 'delivered');
    expect(delivered.jobs[0].attempts).toBe(2);
    expect(delivered.jobs[0].recipients[0].evidence.map((e: any) => e.outcome)).toEqual(['deferred', 'delivered']);
    expect(world.mx('mx1.tempfail.test').received.filter((m) => m.raw.includes(messageId))).toHaveLength(1);
    expect((await rig.api('POST', `/api/v1/queue/${id}/retry`)).status).toBe(409);
  });

  test('retry delivers a deferred message now; show gives envelope, header facts and evidence; delete removes a message', async () => {
    const { id, messageId } = await rig.submit(['patient@tempfail.test'], 'retry');
    const deferred = await rig.waitForMessage(id, (m) => m.state === 'deferred');
    expect(deferred).toMatchObject({
      id,
      messageId,
      from: 'clinic@sender.test',
      envelope: { from: 'clinic@sender.test', recipients: ['patient@tempfail.test'], client: { ip: '127.0.0.1', listener: 'smarthost' } },
      headers: { messageId, from: 'Clinic <clinic@sender.test>' },
    });
    expect(JSON.stringify(deferred)).not.toContain('private retry'); // no subject
    expect(deferred.jobs[0]).toMatchObject({ domain: 'tempfail.test', state: 'deferred', attempts: 1 });
    expect(deferred.jobs[0].recipients[0].evidence[0]).toMatchObject({ outcome: 'deferred', mx: 'mx1.tempfail.test' });

    expect((await rig.api('POST', `/api/v1/queue/${id}/retry`)).status).toBe(200);
    await rig.waitForMessage(id, (m) => m.state === 'delivered');

    const doomed = await rig.submit(['patient@tempfail.test'], 'delete');
    await rig.waitForMessage(doomed.id, (m) => m.state === 'deferred');
    const deleted = await rig.api('DELETE', `/api/v1/queue/${doomed.id}`);
    expect(deleted).toMatchObject({ status: 200, json: { id: doomed.id, action: 'delete' } });
    expect((await rig.api('GET', `/api/v1/queue/${doomed.id}`)).status).toBe(404);
  });

  test('queue list filters and pages; stats count by state', async () => {
    const page = await rig.api('GET', '/api/v1/queue?state=delivered&domain=TEMPFAIL.test&sender=clinic@sender.test&limit=1&offset=0');
    expect(page.status).toBe(200);
    expect(page.json).toMatchObject({ limit: 1, offset: 0 });
    expect(page.json.total).toBeGreaterThanOrEqual(2);
    expect(page.json.items).toHaveLength(1);
    expect(Object.keys(page.json.items[0]).sort()).toEqual(['from', 'id', 'messageId', 'receivedAt', 'recipients', 'size', 'state']);
    const second = await rig.api('GET', '/api/v1/queue?state=delivered&domain=tempfail.test&limit=1&offset=1');
    expect(second.json.items[0].id).not.toBe(page.json.items[0].id);
    expect((await rig.api('GET', '/api/v1/queue?olderThan=1d')).json.total).toBe(0);
    expect((await rig.api('GET', '/api/v1/queue?olderThan=0')).json.total).toBe(page.json.total);
    expect((await rig.api('GET', '/api/v1/queue?sender=someone@else.test')).json.total).toBe(0);

    const stats = await rig.api('GET', '/api/v1/stats');
    expect(stats.status).toBe(200);
    expect(stats.json.jobs.delivered).toBeGreaterThanOrEqual(2);
    expect(stats.json.fallback).toEqual(expect.objectContaining({ ready: expect.any(Number), acked: expect.any(Number) }));
  });

  test('a diverted recipient released after its domain is fixed is delivered', async () => {
    const domain = fixDomain(backend);
    const { id, messageId } = await rig.submit([`patient@${domain}`], 'fix');
    await rig.waitForMessage(id, (m) => m.state === 'diverted');
    const list = await rig.api('GET', '/api/v1/fallback?state=ready');
    const item = list.json.items.find((i: any) => i.queueId === id);
    expect(item).toMatchObject({ recipient: `patient@${domain}`, messageId, state: 'ready', reason: expect.any(String) });
    const shown = await rig.api('GET', `/api/v1/fallback/${item.id}`);
    expect(shown.json).toMatchObject({ id: item.id, queueId: id, claim: null });
    expect(shown.json.evidence[0]).toMatchObject({ outcome: 'diverted' });

    fixTheDomain(world, backend);
    await sleep(1200); // the old A record (TTL 1 s) expires from the relay's cache
    const released = await rig.api('POST', `/api/v1/fallback/${item.id}/release`);
    expect(released).toMatchObject({ status: 200, json: { id: item.id, queueId: id } });
    await rig.waitForMessage(id, (m) => m.state === 'delivered');
    const arrived = world.mx('mx1.tls13.test').received.filter((m) => m.rcptTo.includes(`patient@${domain}`));
    expect(arrived).toHaveLength(1);
    expect(arrived[0]!.tls).toMatchObject({ protocol: 'TLSv1.3' });
    expect((await rig.api('GET', `/api/v1/fallback/${item.id}`)).status).toBe(404);
  });

  test('portal: claim, download the body byte for byte, ack; an unacked claim comes back after its lease', async () => {
    const { id } = await rig.submit(['patient@nostarttls.test'], 'portal');
    await rig.waitForMessage(id, (m) => m.state === 'diverted');

    const first = await rig.api('POST', '/api/v1/portal/claim', { body: { owner: 'portal-a', limit: 50, lease: '1s' } });
    expect(first.status).toBe(200);
    const item = first.json.items.find((i: any) => i.queueId === id);
    expect(item).toMatchObject({ state: 'claimed', claim: { owner: 'portal-a' } });

    const body = await rig.api('GET', `/api/v1/portal/items/${item.id}/body`);
    expect(body.status).toBe(200);
    expect(body.headers.get('content-type')).toBe('message/rfc822');
    const stored = await readAll(await rig.store.openBody(id));
    const response = await fetch(`http://127.0.0.1:${rig.adminPort}/api/v1/portal/items/${item.id}/body`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(Buffer.from(await response.arrayBuffer()).equals(stored)).toBe(true);

    // Claimed: not offered to another portal until the lease ends.
    const busy = await rig.api('POST', '/api/v1/portal/claim', { body: { owner: 'portal-b', limit: 50, lease: 60 } });
    expect(busy.json.items.map((i: any) => i.id)).not.toContain(item.id);
    await sleep(1200);
    const again = await rig.api('POST', '/api/v1/portal/claim', { body: { owner: 'portal-b', limit: 50, lease: 60 } });
    expect(again.json.items.map((i: any) => i.id)).toContain(item.id);

    expect((await rig.api('POST', `/api/v1/portal/items/${item.id}/ack`, { body: { owner: 'portal-a' } })).status).toBe(409);
    expect((await rig.api('POST', `/api/v1/portal/items/${item.id}/ack`, { body: { owner: 'portal-b' } })).status).toBe(200);
    expect((await rig.api('GET', `/api/v1/fallback/${item.id}`)).json.state).toBe('acked');
    const refused = await rig.api('POST', `/api/v1/fallback/${item.id}/release`);
    expect(refused.status).toBe(409);
    expect(refused.json.message).toMatch(/handed over/);

    const deleted = await rig.api('DELETE', `/api/v1/fallback/${item.id}`);
    expect(deleted.status).toBe(200);
    expect((await rig.api('GET', `/api/v1/fallback/${item.id}`)).status).toBe(404);
  });

  test('audit by Message-ID and queue id; domain check', async () => {
    const { id, messageId } = await rig.submit(['patient@tls13.test', 'patient@nostarttls.test'], 'audit');
    await rig.waitForMessage(id, (m) => m.jobs.every((j: any) => ['delivered', 'diverted'].includes(j.state)));
    const byMessageId = await rig.api('GET', `/api/v1/audit/${encodeURIComponent(messageId)}`);
    expect(byMessageId.status).toBe(200);
    expect(byMessageId.json.messages).toEqual([{ id, messageId }]);
    const outcomes = Object.fromEntries(byMessageId.json.entries.map((e: any) => [e.recipient, e.outcome]));
    expect(outcomes).toEqual({ 'patient@tls13.test': 'delivered', 'patient@nostarttls.test': 'diverted' });
    expect(byMessageId.json.entries.find((e: any) => e.outcome === 'delivered')).toMatchObject({ queueId: id, messageId, mx: 'mx1.tls13.test', tls: { protocol: 'TLSv1.3' } });
    const bare = await rig.api('GET', `/api/v1/audit/${encodeURIComponent(messageId.slice(1, -1))}`);
    expect(bare.json.entries).toEqual(byMessageId.json.entries);
    const cliJson = JSON.parse((await rig.cli('audit', messageId, '--json')).stdout);
    expect(byMessageId.json.entries).toEqual(cliJson);
    expect((await rig.api('GET', `/api/v1/audit/${id}`)).json.entries).toEqual(byMessageId.json.entries);

    const good = await rig.api('GET', '/api/v1/check/tls13.test');
    expect(good.json).toMatchObject({ domain: 'tls13.test', verdict: 'deliver', via: 'mx1.tls13.test' });
    const bad = await rig.api('GET', '/api/v1/check/nostarttls.test');
    expect(bad.json).toMatchObject({ domain: 'nostarttls.test', verdict: 'divert' });
  });

  test('/metrics: build info, waiting jobs by domain (top N from the reloaded config) and oldest age, open connections, reloads', async () => {
    await rig.submit(['patient@servfail.test'], 'depth-1');
    await rig.submit(['patient@servfail.test', 'patient@dnstimeout.test'], 'depth-2');
    // One open connection on the smarthost listener, greeted (counted from accept).
    const socket = net.connect(rig.relay.ports.smarthost!, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('data', () => resolve());
      socket.once('error', reject);
    });
    try {
      const config = parse(readFileSync(rig.fixture.configFile, 'utf8')) as { admin: Record<string, unknown> };
      writeFileSync(rig.fixture.configFile, stringify({ ...config, admin: { ...config.admin, metricsTopDomains: 1 } }));
      const reloadsBefore = rig.relay.logs.filter((l) => l.event === 'config-reloaded').length;
      rig.relay.child.kill('SIGHUP');
      for (let i = 0; i < 100 && rig.relay.logs.filter((l) => l.event === 'config-reloaded').length === reloadsBefore; i++) await sleep(100);
      const digest = (await rig.api('GET', '/healthz', { token: null })).json.config.digest as string;

      // Scrapes reuse one store answer for 2 s: poll (bounded) until the submitted jobs show.
      let text = '';
      for (let i = 0; i < 60; i++) {
        text = (await rig.api('GET', '/metrics')).text;
        if (sample(text, 'sealgate_queue_domain_jobs', { domain: 'servfail.test' }) === 2) break;
        await sleep(250);
      }
      expect(sample(text, 'sealgate_build_info', { version: VERSION, node: process.version })).toBe(1);
      expect(sample(text, 'sealgate_queue_domain_jobs', { domain: 'servfail.test' })).toBe(2);
      // admin.metricsTopDomains 1 since the reload: every other domain is summed under "other".
      expect(sample(text, 'sealgate_queue_domain_jobs', { domain: 'dnstimeout.test' })).toBeUndefined();
      expect(sample(text, 'sealgate_queue_domain_jobs', { domain: 'other' })).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'sealgate_queue_oldest_age_seconds')).toBeGreaterThan(0);
      expect(sample(text, 'sealgate_inbound_connections', { listener: 'smarthost' })).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'sealgate_inbound_connections', { listener: 'submissions' })).toBe(0);
      expect(sample(text, 'sealgate_config_reloads_total')).toBe(reloadsBefore + 1);
      expect(sample(text, 'sealgate_config_reload_failures_total')).toBe(0);
      expect(sample(text, 'sealgate_config_last_reload_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 600);
      expect(sample(text, 'sealgate_config_info', { digest })).toBe(1);
      // Existing names are unchanged.
      expect(sample(text, 'sealgate_queue_jobs', { state: 'deferred' })).toBeGreaterThanOrEqual(1);
      expect(text).not.toContain('patient@');
    } finally {
      socket.destroy();
    }
  });

  test('check ?mx=host:port probes one host under the domain policy (the `sealgate check --mx --json` report); a bad target is 400', async () => {
    const probe = await rig.api('GET', `/api/v1/check/tls13.test?mx=${encodeURIComponent(`mx1.tls13.test:${world.smtpPort}`)}`);
    expect(probe.status).toBe(200);
    expect(probe.json).toMatchObject({ domain: 'tls13.test', host: 'mx1.tls13.test', port: world.smtpPort, compliant: true, tls: { protocol: 'TLSv1.3' }, verified: true, nameMatch: true });
    expect(probe.json.chain[0]).toMatchObject({ san: expect.arrayContaining(['DNS:mx1.tls13.test']), sha256: expect.any(String), spkiSha256: expect.any(String) });
    expect(probe.json.ehlo.beforeTls).toContain('STARTTLS');
    const weak = await rig.api('GET', `/api/v1/check/tls11.test?mx=mx1.tls11.test:${world.smtpPort}`);
    expect(weak.json).toMatchObject({ compliant: false, code: 'tls-handshake-failed', offered: { protocol: 'TLSv1.1' } });
    const bad = await rig.api('GET', '/api/v1/check/tls13.test?mx=not%20a%20host');
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ error: 'bad-request', field: 'mx' });
  });

  test('every state-changing action and every body download is in the audit log with the token name, without subjects', async () => {
    const actions = rig
      .auditLines()
      .filter((l) => l.event === 'admin-action')
      .map((l) => l.admin);
    const kinds = new Set(actions.map((a: any) => a.action));
    for (const kind of ['queue-hold', 'queue-release', 'queue-retry', 'queue-delete', 'fallback-release', 'fallback-delete', 'portal-claim', 'portal-ack', 'content-read']) {
      expect(kinds).toContain(kind);
    }
    for (const action of actions) expect(action).toMatchObject({ actor: TOKEN_NAME, id: expect.any(String) });
    const everything = JSON.stringify(rig.auditLines()) + JSON.stringify(rig.relay.logs);
    expect(everything).not.toMatch(/private (hold|retry|fix|portal|audit)/);
  });
});
