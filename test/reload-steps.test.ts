import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { UserDirectory } from '../src/auth/users';
import { parseConfig } from '../src/config/load';
import type { Config } from '../src/config/schema';
import { listenerTlsOptions, type InboundRuntime } from '../src/inbound/server';
import { createPolicyRuntime, livePolicy, policyChanged, rebuildPolicyRuntime, type PolicyRuntime } from '../src/policy';
import { defaultTlsProfile } from '../src/policy/tls-profile';
import { portalTlsOptions } from '../src/portal/web';
import { listenersStep, outboundStep, type RunningParts } from '../src/reload-steps';
import { leafCertificate } from './support/world';

const logger = pino({ level: 'silent' });
const LISTENERS = [{ name: 'sub', port: 2587, tls: 'starttls', auth: 'required' }];

function config(raw: Record<string, unknown> = {}): Config {
  return parseConfig({ listeners: LISTENERS, ...raw }, {}, os.tmpdir());
}

const CERT_A = { cert: 'cert-a', key: 'key-a' };
const CERT_B = { cert: 'cert-b', key: 'key-b' };

function running(policy = {} as PolicyRuntime): RunningParts {
  return { profile: defaultTlsProfile(), policy, inboundTls: CERT_A };
}

/** Runs a step's prepare and returns its switch (every step here returns one). */
async function prepare(step: { prepare(next: Config, previous: Config): unknown }, next: Config, previous: Config): Promise<() => void> {
  return (await step.prepare(next, previous)) as () => void;
}

describe('outbound reload step', () => {
  const setup = (parts = running()) => {
    const rebuilt: PolicyRuntime = { planner: {} } as PolicyRuntime;
    const rebuild = jest.fn(() => rebuilt);
    const engine = { reconfigure: jest.fn() };
    const scheduler = { configure: jest.fn() };
    return { parts, rebuilt, rebuild, engine, scheduler, step: outboundStep({ running: parts, rebuild, engine, scheduler, logger }) };
  };

  test('a changed domain level builds a new policy runtime, switched in only by the switch', async () => {
    const { parts, rebuilt, rebuild, engine, step } = setup();
    const before = parts.policy;
    const previous = config();
    const next = config({ domains: { 'partner.example': { level: 'portal' } } });
    const commit = await prepare(step, next, previous);
    expect(rebuild).toHaveBeenCalledTimes(1);
    expect(parts.policy).toBe(before);
    expect(engine.reconfigure).not.toHaveBeenCalled();
    commit();
    expect(parts.policy).toBe(rebuilt);
    expect(engine.reconfigure).toHaveBeenCalledWith(next, rebuilt);
  });

  test('a change outside the policy keeps the runtime (and its DNS cache) but still hands the engine the new config', async () => {
    const { parts, rebuild, engine, scheduler, step } = setup();
    const before = parts.policy;
    const next = config({ delivery: { retrySchedule: ['1m'], concurrency: 3, perDestination: 2, pollInterval: '2s' } });
    (await prepare(step, next, config()))();
    expect(rebuild).not.toHaveBeenCalled();
    expect(engine.reconfigure).toHaveBeenCalledWith(next, before);
    expect(scheduler.configure).toHaveBeenCalledWith({ concurrency: 3, perDestination: 2, idlePollMs: 2_000 });
  });

  test('an extra CA file configured is read again at every reload (a new runtime even when nothing changed)', async () => {
    const { rebuild, step } = setup();
    const withCa = config({ outbound: { extraCaFile: '/etc/ssl/extra.pem' } });
    (await prepare(step, withCa, withCa))();
    expect(rebuild).toHaveBeenCalledTimes(1);
  });

  test('a profile that goes below the NIST profile without allowNonCompliantProfile refuses the reload', async () => {
    const parts = running(createPolicyRuntime(config()));
    const step = outboundStep({
      running: parts,
      rebuild: (next, previous, profile) => rebuildPolicyRuntime(next, { config: previous, runtime: parts.policy }, { profile }),
      engine: { reconfigure: jest.fn() },
      scheduler: { configure: jest.fn() },
      logger,
    });
    expect(() => step.prepare(config({ tlsProfile: { minVersion: 'TLSv1' } }), config())).toThrow(/tlsProfile.minVersion/);
  });
});

describe('policy runtime on reload', () => {
  test('policyChanged looks at domains, tlsProfile, dns, mtaSts and outbound only', () => {
    expect(policyChanged(config(), config({ domains: { 'a.example': { route: 'mx.a.example' } } }))).toBe(true);
    expect(policyChanged(config(), config({ outbound: { defaultLevel: 'verify' } }))).toBe(true);
    expect(policyChanged(config(), config({ mtaSts: { enabled: false } }))).toBe(true);
    expect(policyChanged(config(), config({ limits: { maxRecipients: 5 } }))).toBe(false);
  });

  test('the resolver (and so its cache) is kept unless dns changed', () => {
    const previous = config();
    const runtime = createPolicyRuntime(previous);
    expect(rebuildPolicyRuntime(config({ domains: { 'a.example': { level: 'portal' } } }), { config: previous, runtime }).resolver).toBe(runtime.resolver);
    expect(rebuildPolicyRuntime(config({ dns: { timeout: '1s' } }), { config: previous, runtime }).resolver).not.toBe(runtime.resolver);
  });

  test('the new planner plans under the new domain level; a live view follows the switch', async () => {
    const previous = config();
    let current = createPolicyRuntime(previous);
    const view = livePolicy(() => current);
    const next = config({ domains: { 'partner.example': { level: 'portal' } } });
    const rebuilt = rebuildPolicyRuntime(next, { config: previous, runtime: current });
    expect((await rebuilt.planner.planDelivery('partner.example')).kind).toBe('divert');
    expect(view.planner).not.toBe(rebuilt.planner);
    current = rebuilt;
    expect(view.planner).toBe(rebuilt.planner);
  });
});

describe('listeners reload step', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'sealgate-reload-steps-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const setup = (overrides: { loadCertificate?: () => Promise<typeof CERT_B>; openUsers?: (file: string) => Promise<UserDirectory> } = {}) => {
    const parts = running();
    const inbound = { reconfigure: jest.fn<void, [InboundRuntime]>() };
    const loadCertificate = jest.fn(overrides.loadCertificate ?? (async () => CERT_B));
    const users = new UserDirectory(path.join(dir, 'users.json'));
    const openUsers = jest.fn(overrides.openUsers ?? (async () => users));
    const portal = {
      loadCertificate: jest.fn(async (_next: Config, inboundTls: typeof CERT_A) => inboundTls),
      check: jest.fn((_profile: unknown, tls: typeof CERT_A) => ({ tls })),
      setTls: jest.fn(),
    };
    const step = listenersStep({ running: parts, loadCertificate, openUsers, checkTls: () => undefined, inbound, portal });
    return { parts, inbound, loadCertificate, openUsers, users, portal, step };
  };

  test('a configured certificate is read again at every reload (renewed at the same path), served only after the switch', async () => {
    const { parts, inbound, loadCertificate, users, portal, step } = setup();
    const withCert = config({ tls: { cert: '/etc/cert.pem', key: '/etc/key.pem' } });
    const commit = await prepare(step, withCert, withCert);
    expect(loadCertificate).toHaveBeenCalledTimes(1);
    expect(inbound.reconfigure).not.toHaveBeenCalled();
    expect(portal.setTls).not.toHaveBeenCalled();
    commit();
    expect(inbound.reconfigure).toHaveBeenCalledWith({ config: withCert, profile: parts.profile, users, tls: CERT_B });
    expect(parts.inboundTls).toBe(CERT_B);
    // The portal without a certificate of its own follows the inbound one.
    expect(portal.setTls).toHaveBeenCalledWith({ tls: CERT_B });
  });

  test('the development certificate stays while no certificate is configured', async () => {
    const { inbound, loadCertificate, step } = setup();
    (await prepare(step, config({ limits: { maxRecipients: 5 } }), config()))();
    expect(loadCertificate).not.toHaveBeenCalled();
    expect(inbound.reconfigure.mock.calls[0]![0].tls).toBe(CERT_A);
    expect(inbound.reconfigure.mock.calls[0]![0].config.limits.maxRecipients).toBe(5);
  });

  test('an unreadable certificate refuses the reload with its error; nothing is switched', async () => {
    const { parts, inbound, step } = setup({
      loadCertificate: async () => {
        throw new Error('cannot read the TLS certificate (tls.cert) at /missing.pem: ENOENT');
      },
    });
    const next = config({ tls: { cert: '/missing.pem', key: '/missing-key.pem' } });
    await expect(step.prepare(next, config())).rejects.toThrow(/tls\.cert/);
    expect(inbound.reconfigure).not.toHaveBeenCalled();
    expect(parts.inboundTls).toBe(CERT_A);
  });

  test('a users file that cannot be read refuses the reload naming auth.usersFile', async () => {
    const file = path.join(dir, 'broken.json');
    writeFileSync(file, '{ not json');
    const { inbound, step } = setup({
      openUsers: async (f) => {
        const users = new UserDirectory(f);
        await users.load();
        return users;
      },
    });
    await expect(step.prepare(config({ auth: { usersFile: file } }), config())).rejects.toThrow(/^auth\.usersFile: .*broken\.json: not valid JSON/);
    expect(inbound.reconfigure).not.toHaveBeenCalled();
  });

  test('a changed profile reaches the listeners and the running parts at the switch', async () => {
    const { parts, inbound, step } = setup();
    const before = parts.profile;
    const next = config({ tlsProfile: { minVersion: 'TLSv1.3' } });
    const commit = await prepare(step, next, config());
    expect(parts.profile).toBe(before);
    commit();
    expect(parts.profile).not.toBe(before);
    expect(parts.profile.minVersion).toBe('TLSv1.3');
    expect(inbound.reconfigure.mock.calls[0]![0].profile).toBe(parts.profile);
  });
});

describe('certificate checks before a switch', () => {
  test('a key that does not belong to the certificate is refused naming the keys', async () => {
    const a = await leafCertificate('valid', 'a.test');
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    expect(() => listenerTlsOptions(defaultTlsProfile(), { cert: a.cert, key: other })).toThrow(/^tls\.cert\/tls\.key: /);
    expect(() => portalTlsOptions(defaultTlsProfile(), { cert: a.cert, key: other })).toThrow(/^portal\.cert\/portal\.key: /);
    expect(listenerTlsOptions(defaultTlsProfile(), a)).toMatchObject({ cert: a.cert, key: a.key, minVersion: 'TLSv1.2' });
  });
});
