import { BACKENDS, fixDomain, fixTheDomain, startRig, startRigWorld, type Rig } from '../admin/rig';
import { startRelayProcess } from '../support/relay-process';
import type { World } from '../support/world';

/**
 * The admin CLI (queue, fallback, audit, stats) against the store of a running relay, then with the
 * relay stopped, on both backends. Exit codes: 0 ok, 1 failure / invalid state, 2 usage, 6 not found.
 */

let world: World;

beforeAll(async () => {
  world = await startRigWorld();
});

afterAll(async () => {
  await world?.stop();
});

describe.each(BACKENDS)('admin CLI with the %s store', (backend) => {
  let rig: Rig;

  beforeAll(async () => {
    rig = await startRig(backend, world);
  });

  afterAll(async () => {
    await rig?.stop();
  });

  async function json(...args: string[]): Promise<any> {
    const result = await rig.cli(...args, '--json');
    expect({ args, code: result.code, stderr: result.stderr }).toEqual({ args, code: 0, stderr: '' });
    return JSON.parse(result.stdout);
  }

  // Polls over the admin API: each CLI run costs a process start, so the CLI is run only for what is tested.
  const waitFor = (id: string, predicate: (detail: any) => boolean) => rig.waitForMessage(id, predicate);

  test('queue list/show/hold/retry/release/delete while the relay runs', async () => {
    const { id, messageId } = await rig.submit(['patient@tempfail.test'], 'cli-hold');
    await waitFor(id, (m) => m.state === 'deferred');

    const table = await rig.cli('queue', 'list', '--state', 'deferred');
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`^ID\\s+SENDER\\s+DOMAINS\\s+SIZE\\s+STATE\\s+AGE`, 'm'));
    expect(table.stdout).toMatch(new RegExp(`${id}\\s+clinic@sender\\.test\\s+tempfail\\.test\\s+\\S+\\s+deferred`));
    const listed = await json('queue', 'list', '--domain', 'tempfail.test', '--sender', 'clinic@sender.test');
    expect(listed.find((e: any) => e.id === id)).toEqual({
      id,
      messageId,
      from: 'clinic@sender.test',
      size: expect.any(Number),
      receivedAt: expect.any(String),
      state: 'deferred',
      recipients: [{ address: 'patient@tempfail.test', domain: 'tempfail.test', state: 'deferred' }],
    });
    expect(await json('queue', 'list', '--older-than', '1d')).toEqual([]);
    expect(await json('queue', 'list', '--limit', '1', '--offset', '0')).toHaveLength(1);

    const shown = await rig.cli('queue', 'show', id);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(`Message-ID:  ${messageId}`);
    expect(shown.stdout).toMatch(/patient@tempfail\.test\s+deferred\s+1/);
    expect(shown.stdout).not.toContain('private cli-hold');

    expect((await rig.cli('queue', 'hold', id)).stdout).toContain(`${id}: held`);
    const again = await rig.cli('queue', 'hold', id);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/nothing waiting to hold/);
    expect((await json('queue', 'retry', id)).message.state).toBe('held');
    await new Promise((r) => setTimeout(r, 1500)); // several delivery polls
    expect((await json('queue', 'show', id)).state).toBe('held');
    expect(world.mx('mx1.tempfail.test').received.filter((m) => m.raw.includes(messageId))).toHaveLength(0);

    expect((await rig.cli('queue', 'release', id)).code).toBe(0);
    await waitFor(id, (m) => m.state === 'delivered');
    expect(world.mx('mx1.tempfail.test').received.filter((m) => m.raw.includes(messageId))).toHaveLength(1);
    expect((await rig.cli('queue', 'release', id)).code).toBe(1);

    const other = await rig.submit(['patient@tempfail.test'], 'cli-retry');
    await waitFor(other.id, (m) => m.state === 'deferred');
    expect((await rig.cli('queue', 'retry', other.id)).code).toBe(0);
    await waitFor(other.id, (m) => m.state === 'delivered');

    const doomed = await rig.submit(['patient@tempfail.test'], 'cli-delete');
    await waitFor(doomed.id, (m) => m.state === 'deferred');
    expect((await rig.cli('queue', 'delete', doomed.id)).stdout).toContain('deleted');
    expect((await rig.cli('queue', 'show', doomed.id)).code).toBe(6);
  }, 120_000);

  test('fallback list/show/release (delivered once the domain is fixed)/delete; audit; stats', async () => {
    const domain = fixDomain(backend);
    const { id, messageId } = await rig.submit([`patient@${domain}`, 'patient@nostarttls.test'], 'cli-fallback');
    await waitFor(id, (m) => m.jobs.every((j: any) => j.state === 'diverted'));

    const items = (await json('fallback', 'list', '--state', 'ready')).filter((i: any) => i.queueId === id);
    expect(items).toHaveLength(2);
    expect(Object.keys(items[0]).sort()).toEqual(['divertedAt', 'from', 'id', 'messageId', 'queueId', 'reason', 'recipient', 'state']);
    const fix = items.find((i: any) => i.recipient === `patient@${domain}`);
    const broken = items.find((i: any) => i.recipient === 'patient@nostarttls.test');
    const text = await rig.cli('fallback', 'list');
    expect(text.stdout).toMatch(new RegExp(`${fix.id}\\s+${id}\\s+patient@${domain.replace('.', '\\.')}`));
    const shown = await rig.cli('fallback', 'show', fix.id);
    expect(shown.stdout).toContain(`Recipient:   patient@${domain}`);
    expect((await json('fallback', 'show', fix.id)).evidence[0]).toMatchObject({ outcome: 'diverted' });

    fixTheDomain(world, backend);
    await new Promise((r) => setTimeout(r, 1200)); // the old A record (TTL 1 s) expires from the relay's cache
    expect((await rig.cli('fallback', 'release', fix.id)).code).toBe(0);
    await waitFor(id, (m) => m.jobs.find((j: any) => j.domain === domain).state === 'delivered');
    expect(world.mx('mx1.tls13.test').received.filter((m) => m.rcptTo.includes(`patient@${domain}`))).toHaveLength(1);
    expect((await rig.cli('fallback', 'show', fix.id)).code).toBe(6);

    expect((await rig.cli('fallback', 'delete', broken.id)).code).toBe(0);
    expect((await rig.cli('fallback', 'delete', broken.id)).code).toBe(6);

    const audit = await json('audit', messageId);
    expect(audit.filter((e: any) => e.recipient === `patient@${domain}`).map((e: any) => e.outcome)).toEqual(['diverted', 'delivered']);

    const stats = await json('stats');
    expect(stats.jobs.delivered).toBeGreaterThanOrEqual(3);
    const table = await rig.cli('stats');
    expect(table.stdout).toMatch(/^KIND\s+STATE\s+COUNT/m);
    expect(table.stdout).toMatch(/^job\s+delivered\s+\d+/m);
    expect(table.stdout).toMatch(/^fallback\s+acked\s+\d+/m);
  }, 120_000);

  test('usage errors exit 2, unknown ids 6', async () => {
    // Usage errors come before the store is opened: one backend is enough.
    const usage =
      backend === 'file'
        ? [
            ['queue', 'list', '--state', 'lost'],
            ['queue', 'list', '--limit', 'lots'],
            ['queue', 'list', '--older-than', 'yesterday'],
            ['fallback', 'list', '--state', 'gone'],
            ['queue', 'hold'],
          ]
        : [];
    for (const args of usage) {
      const result = await rig.cli(...args);
      expect({ args, code: result.code }).toEqual({ args, code: 2 });
    }
    for (const args of [
      ['queue', 'show'],
      ['queue', 'hold'],
      ['queue', 'retry'],
      ['queue', 'release'],
      ['queue', 'delete'],
      ['fallback', 'show'],
      ['fallback', 'release'],
      ['fallback', 'delete'],
      ['audit'],
    ]) {
      const result = await rig.cli(...args, 'nosuchid');
      expect({ args, code: result.code }).toEqual({ args, code: 6 });
    }
  }, 120_000);

  test('commands work with the relay stopped; an acknowledged item cannot be released; actions are audited', async () => {
    const { id } = await rig.submit(['patient@tempfail.test', 'patient@nostarttls.test'], 'cli-stopped');
    await waitFor(id, (m) => m.jobs.every((j: any) => ['deferred', 'diverted'].includes(j.state)));
    await rig.relay.stop();

    expect((await json('queue', 'list')).map((e: any) => e.id)).toContain(id);
    expect((await json('stats')).messages).toBeGreaterThan(0);
    expect((await json('queue', 'hold', id)).message.state).toBe('held+');
    expect((await json('queue', 'release', id)).message.state).toBe('deferred+');

    const [claimed] = (await rig.store.claimFallback('portal-test', 50, 60_000)).filter((i) => i.queueId === id);
    await rig.store.ackFallback(claimed!.id, 'portal-test');
    const refused = await rig.cli('fallback', 'release', claimed!.id);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/handed over/);
    expect((await rig.cli('queue', 'delete', id)).code).toBe(0);
    expect(await json('queue', 'list')).not.toContainEqual(expect.objectContaining({ id }));

    const actions = rig
      .auditLines()
      .filter((l) => l.event === 'admin-action')
      .map((l) => l.admin);
    expect(actions).toContainEqual(expect.objectContaining({ action: 'queue-hold', id, actor: expect.stringMatching(/^cli:/) }));
    expect(actions).toContainEqual(expect.objectContaining({ action: 'queue-delete', id }));
    expect(actions.map((a: any) => a.action)).toEqual(expect.arrayContaining(['fallback-release', 'fallback-delete', 'queue-retry']));

    // The relay starts again on the same store (restored for afterAll).
    rig.relay = await startRelayProcess(rig.fixture.configFile, { SEALGATE_ADMIN_TOKEN: '' });
  }, 120_000);
});
