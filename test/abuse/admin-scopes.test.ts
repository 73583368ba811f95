import { readFileSync } from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { until } from '../support/wait';
import { adminGet, ADMIN_TOKEN, startAbuseRig, type AbuseRig } from './relay';

/**
 * A token that is valid but narrow, used from outside against a started relay: an external portal's
 * token walking the admin API for data it should not see, and an operator's (legacy) token trying to
 * read a diverted message's body. Every refusal is a 403 naming the missing scope, never data, and is
 * not counted as a failed token check; the reads that are allowed land in the audit log.
 */

const PORTAL_TOKEN = 'abuse-portal-token-0123456789';
const SECRET = 'Lab results: secret diagnosis for the recipient only';

describe('admin token scopes from outside', () => {
  let rig: AbuseRig;
  let queueId: string;
  let itemId: string;

  beforeAll(async () => {
    rig = await startAbuseRig({
      audit: { file: 'audit.log' },
      admin: {
        port: 0,
        tokens: [
          { name: 'ops', token: ADMIN_TOKEN },
          { name: 'ext-portal', token: PORTAL_TOKEN, scopes: ['portal'] },
        ],
      },
    });
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: rig.relay.ports.smarthost!, requireTLS: true, tls: { rejectUnauthorized: false } });
    try {
      const info = await transport.sendMail({
        envelope: { from: 'clinic@sender.test', to: ['dr.x@nostarttls.test'] },
        raw: `From: clinic@sender.test\r\nTo: dr.x@nostarttls.test\r\nSubject: results\r\nMessage-ID: <scopes@sender.test>\r\n\r\n${SECRET}\r\n`,
      });
      queueId = /queued as (\S+)/.exec(info.response)![1]!;
    } finally {
      transport.close();
    }
    itemId = await until(
      'the message to be diverted to the fallback',
      async () => {
        const list = await adminGet(rig.adminPort, '/api/v1/fallback', { token: ADMIN_TOKEN });
        const items = (JSON.parse(list.body) as { items: Array<{ id: string; queueId: string }> }).items;
        return items.find((i) => i.queueId === queueId)?.id;
      },
      20_000,
    );
  }, 60_000);

  afterAll(async () => {
    await rig?.stop();
  });

  test('a portal token walking the admin API (198 requests) gets 403 naming the scope, no data, and is never throttled', async () => {
    const from = '127.0.0.31';
    const paths = [
      '/api/v1/queue',
      `/api/v1/queue/${queueId}`,
      '/api/v1/fallback',
      `/api/v1/fallback/${itemId}`,
      '/api/v1/stats',
      `/api/v1/audit/${queueId}`,
      '/api/v1/check/nostarttls.test',
      '/api/v1/portal/items',
      '/metrics',
      // Odd spellings reach no other route (404 or the same 403), never the data.
      '/api/v1//queue',
      '/api/v1/queue/?state=deferred',
    ];
    const seen: Record<string, Set<string>> = {};
    for (let round = 0; round < 18; round++) {
      const answers = await Promise.all(paths.map((p) => adminGet(rig.adminPort, p, { token: PORTAL_TOKEN, localAddress: from })));
      answers.forEach((a, i) => {
        const key = paths[i]!;
        (seen[key] ??= new Set()).add(`${a.status} ${a.status === 403 ? (JSON.parse(a.body) as { scope: string }).scope : ''}`);
        expect(a.body).not.toMatch(/dr\.x@|secret diagnosis|clinic@sender/);
      });
    }
    for (const p of paths.slice(0, 8)) expect({ p, answers: [...seen[p]!] }).toEqual({ p, answers: ['403 read'] });
    expect([...seen['/metrics']!]).toEqual(['403 metrics']);
    for (const p of paths.slice(9)) expect([...seen[p]!].every((a) => a.startsWith('403') || a.startsWith('404'))).toBe(true);
    // 403s are not failed token checks: the address is not throttled, and its own routes still work.
    expect(rig.relay.logs.some((l) => l.event === 'admin-auth-throttled' && l.ip === from)).toBe(false);
    expect(rig.relay.logs).toContainEqual(expect.objectContaining({ event: 'admin-forbidden', actor: 'ext-portal', route: 'GET /api/v1/queue', scope: 'read' }));
    const ready = await adminGet(rig.adminPort, '/readyz', { localAddress: from });
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toEqual({ ready: true, version: expect.any(String) });
  }, 60_000);

  test('an operator token without content cannot read the body; the portal token can, and only its read is audited', async () => {
    const refused = await adminGet(rig.adminPort, `/api/v1/portal/items/${itemId}/body`, { token: ADMIN_TOKEN, localAddress: '127.0.0.32' });
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body)).toMatchObject({ error: 'forbidden', scope: 'content' });
    expect(refused.body).not.toContain('secret diagnosis');

    const body = await adminGet(rig.adminPort, `/api/v1/portal/items/${itemId}/body`, { token: PORTAL_TOKEN, localAddress: '127.0.0.32' });
    expect(body.status).toBe(200);
    expect(body.body).toContain(SECRET);

    const audit = readFileSync(path.join(rig.fixture.dir, 'audit.log'), 'utf8');
    const reads = audit
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { event: string; admin?: Record<string, unknown> })
      .filter((l) => l.event === 'admin-action' && l.admin?.action === 'content-read')
      .map((l) => l.admin);
    expect(reads).toEqual([{ actor: 'ext-portal', action: 'content-read', id: itemId, queueId, recipient: 'dr.x@nostarttls.test' }]);
    expect(audit).not.toContain('secret diagnosis');
  }, 30_000);
});
