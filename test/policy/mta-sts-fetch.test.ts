import { createPolicyFetcher, type PolicyFetcher } from '../../src/policy/mta-sts/fetch';
import type { LookupFunction } from '../../src/policy/resolver';
import { buildTrustStore } from '../../src/policy/trust';
import { startMtaStsServer, type MtaStsServer } from '../support/world/mta-sts-server';
import { testCa } from '../support/world';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const POLICY = { mode: 'enforce' as const, mx: ['mx.fetch.test'], maxAge: 600 };

/** The HTTPS policy fetch against a real HTTPS server (test CA), one behaviour at a time. */
describe('MTA-STS policy fetch (RFC 8461 §3.3)', () => {
  let server: MtaStsServer;
  let dir: string;
  let fetcher: PolicyFetcher;
  const looked: string[] = [];

  beforeAll(async () => {
    server = await startMtaStsServer();
    dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-fetch-'));
    const caFile = path.join(dir, 'ca.pem');
    writeFileSync(caFile, (await testCa()).caPem);
    // Stands for the relay's resolver: every mta-sts.* name is the test server.
    const lookup: LookupFunction = (hostname, options, callback) => {
      looked.push(hostname);
      const all = typeof options === 'object' && options?.all;
      if (all) callback(null, [{ address: server.host, family: 4 }]);
      else callback(null, server.host, 4);
    };
    fetcher = createPolicyFetcher({ lookup, ca: buildTrustStore(caFile, {}), connectTimeout: 2_000, totalTimeout: 1_500, maxBytes: 64 * 1024, port: server.port });
  });
  afterAll(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('fetches the policy over HTTPS with SNI, resolving through the given lookup', async () => {
    server.set('ok.fetch.test', { policy: POLICY });
    await expect(fetcher('ok.fetch.test')).resolves.toMatch(/^version: STSv1\r\nmode: enforce\r\n/);
    expect(looked).toContain('mta-sts.ok.fetch.test');
    expect(server.requestsFor('ok.fetch.test').at(-1)).toMatchObject({ servername: 'mta-sts.ok.fetch.test', path: '/.well-known/mta-sts.txt' });
  });

  it('accepts text/plain with parameters', async () => {
    server.set('charset.fetch.test', { policy: POLICY, contentType: 'Text/Plain; charset=utf-8' });
    await expect(fetcher('charset.fetch.test')).resolves.toMatch(/STSv1/);
  });

  it.each([
    ['a redirect (not followed)', { redirect: 'https://elsewhere.test/policy.txt' }, /HTTP 301 \(redirect to https:\/\/elsewhere\.test\/policy\.txt not followed\)/],
    ['status 404', { status: 404 }, /HTTP 404/],
    ['status 204', { status: 204 }, /HTTP 204/],
    ['a media type other than text/plain', { contentType: 'text/html' }, /media type "text\/html"/],
    ['a body over the size limit', { oversizeBytes: 70 * 1024 }, /larger than 65536 bytes/],
    ['a server slower than the total timeout', { delayMs: 5_000 }, /longer than 1500 ms/],
  ])('fails on %s', async (_name, response, message) => {
    const domain = `case${Math.floor(Math.random() * 1e9)}.fetch.test`;
    server.set(domain, { policy: POLICY, ...response });
    await expect(fetcher(domain)).rejects.toMatchObject({ name: 'PolicyFetchError', message: expect.stringMatching(message), type: 'sts-policy-fetch-error' });
  });

  it.each(['wrong-name', 'expired', 'self-signed'] as const)('fails on a %s certificate (sts-webpki-invalid)', async (certificate) => {
    const domain = `${certificate}.fetch.test`;
    server.set(domain, { policy: POLICY, certificate });
    await expect(fetcher(domain)).rejects.toMatchObject({ name: 'PolicyFetchError', type: 'sts-webpki-invalid' });
  });

  it('does not trust the test CA without the extra CA file', async () => {
    const lookup: LookupFunction = (_hostname, _options, callback) => callback(null, [{ address: server.host, family: 4 }]);
    const strict = createPolicyFetcher({ lookup, connectTimeout: 2_000, totalTimeout: 2_000, maxBytes: 1024, port: server.port });
    server.set('ok.fetch.test', { policy: POLICY });
    await expect(strict('ok.fetch.test')).rejects.toMatchObject({ type: 'sts-webpki-invalid' });
  });
});
