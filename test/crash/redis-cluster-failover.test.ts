import { loadConfig } from '../../src/config/load';
import { silentLogger } from '../../src/log/logger';
import { createStore } from '../../src/store';
import type { Store } from '../../src/store/types';
import { crashSeed, drainStore, seededRandom, sleep, SmtpLoad, type Submission } from '../support/crash-load';
import { reconcile, summaryLine } from '../support/crash-reconcile';
import { startRedisCluster, type ClusterNodeHandle, type RedisClusterHandle } from '../support/redis-cluster';
import { relayFixture, startRelayProcess, type RelayFixture, type RelayProcess } from '../support/relay-process';
import { standardScenarios, startWorld, type World } from '../support/world';

/**
 * A Redis Cluster failover under load: one relay process on a 3-master, 3-replica cluster the test starts
 * (cluster-node-timeout 2 s) takes a steady stream of submissions; mid-load the master that serves the store's
 * slot is killed with SIGKILL, its replica takes over, and later the killed node comes back (as a replica of the
 * new master). The relay must keep running and keep answering (4xx while the failover runs is fine, never a hang),
 * accept again after it, and once the queue is drained every recipient it acknowledged must be accounted for:
 * nothing a 250 covered may be lost with the master that acknowledged it (the store confirms with WAIT).
 *
 * Bounded: about 20 s of load, a drain of at most 120 s. The seed (recipient choices) is printed;
 * `CRASH_SEED=<seed> npx jest --config jest.crash.config.js test/crash/redis-cluster-failover.test.ts` replays it.
 */

const SEED = crashSeed();
const CONNECTIONS = 3;
const DRAIN_MS = 120_000;
/** Every SMTP reply must come within this bound, failover or not. */
const REPLY_BOUND_MS = 20_000;

console.log(`redis cluster failover: CRASH_SEED=${SEED} connections=${CONNECTIONS}`);

function recipients(seq: number, random: () => number): string[] {
  const list = [`m${seq}@${random() < 0.5 ? 'tls13.test' : 'tls12.test'}`];
  if (random() < 0.3) list.push(`m${seq}@nostarttls.test`);
  if (random() < 0.2) list.push(`m${seq}@rcpt550.test`);
  return list;
}

function tally(list: Submission[]): Record<string, number> {
  return Object.fromEntries(['acked', 'refused-4xx', 'refused-5xx', 'no-reply', 'dropped'].map((k) => [k, list.filter((s) => s.result === k).length]));
}

let world: World | undefined;
let cluster: RedisClusterHandle | undefined;
let fixture: RelayFixture | undefined;
let relay: RelayProcess | undefined;
let store: Store | undefined;
let load: SmtpLoad | undefined;

afterAll(async () => {
  await load?.stop();
  await relay?.stop('SIGKILL');
  await store?.close();
  fixture?.remove();
  await cluster?.stop();
  await world?.stop();
});

test('kill -9 of the master serving the queue under load: the replica takes over, the relay goes on, nothing acknowledged is lost', async () => {
  const startedAt = Date.now();
  world = await startWorld(standardScenarios());
  world.mx('mx1.rcpt550.test').setReplies({ rcpt5xx: ['*'] });
  cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 2_000 });
  const slotKey = `{${cluster.prefix}}`;
  await cluster.waitHealthy(slotKey, 1);

  fixture = relayFixture({
    ...world.relayConfig(),
    queue: {
      backend: 'redis',
      path: 'queue',
      leaseTime: '3s',
      redis: { url: cluster.url, prefix: cluster.prefix, onWeakDurability: 'refuse', cluster: { enabled: true, nodes: cluster.urls.slice(1), replicas: 1, replicaTimeout: '1s' } },
    },
    delivery: { retrySchedule: ['1s'], pollInterval: '200ms' },
  });
  const { config } = loadConfig(fixture.configFile, process.env);
  store = createStore(config, silentLogger());
  await store.open();
  relay = await startRelayProcess(fixture.configFile, {}, 30_000);
  const port = relay.ports.smarthost;

  load = new SmtpLoad({
    tag: `cluster-${SEED}`,
    port: () => port,
    recipients,
    random: seededRandom(SEED),
    connections: CONNECTIONS,
    messagesPerConnection: 4,
    replyTimeoutMs: REPLY_BOUND_MS,
  });
  load.start();

  await sleep(4_000);
  const victim: ClusterNodeHandle = await cluster.masterOf(slotKey);
  const [heir] = await cluster.replicasOf(slotKey);
  const killedAt = Date.now();
  await victim.kill9();
  // The replica is promoted once the others mark the master failed (node timeout) and elect it.
  await cluster.waitHealthy(slotKey, 0, 30_000);
  const promoted = await cluster.masterOf(slotKey);
  const failedOverAt = Date.now();
  await sleep(6_000);
  // The killed node comes back and rejoins as a replica of the new master: writes are confirmed again.
  const restartAt = Date.now();
  await victim.restart();
  await cluster.waitHealthy(slotKey, 1, 60_000);
  const healedAt = Date.now();
  await sleep(5_000);
  await load.stop();

  const before = load.submissions.filter((s) => s.endedAt < killedAt);
  const during = load.submissions.filter((s) => s.endedAt >= killedAt && s.startedAt < healedAt);
  const after = load.submissions.filter((s) => s.startedAt >= healedAt);
  // While the promoted master had no replica at all, no write could be confirmed: no 250 then.
  const orphaned = load.submissions.filter((s) => s.startedAt >= failedOverAt && s.endedAt <= restartAt);
  console.log(
    `redis cluster failover: killed master :${victim.port} (replica :${heir?.port ?? '?'}), promoted :${promoted.port} after ${failedOverAt - killedAt} ms, ` +
      `restarted after ${restartAt - killedAt} ms, healed after ${healedAt - killedAt} ms; before ${JSON.stringify(tally(before))}; during ${JSON.stringify(tally(during))} ` +
      `(replies: ${[...new Set(during.filter((s) => s.result !== 'acked').map((s) => s.detail.slice(0, 120)))].slice(0, 3).join(' | ')}); without a replica ${JSON.stringify(tally(orphaned))}; after ${JSON.stringify(tally(after))}`,
  );

  console.log(
    `redis cluster failover: submissions around it (start and end ms after the kill, result): ${during.map((s) => `${s.startedAt - killedAt}..${s.endedAt - killedAt} ${s.result}`).join(', ')}`,
  );
  const open = await drainStore(store, DRAIN_MS);
  const relayAlive = relay.child.exitCode === null && relay.child.signalCode === null;
  await relay.stop('SIGTERM');
  const reconciliation = reconcile({
    submissions: load.submissions,
    messages: await store.listMessages(),
    fallback: await store.listFallback(),
    received: world.received(),
    logs: relay.logs,
    dsnMailbox: 'mx1.sender.test',
    kills: [],
  });
  console.log(
    `${summaryLine('redis cluster failover', 0, reconciliation)}; open jobs after drain=${open}; submissions=${load.submissions.length}; ` +
      `slowest SMTP reply=${load.slowestReplyMs} ms; run time=${((Date.now() - startedAt) / 1000).toFixed(1)} s; CRASH_SEED=${SEED}`,
  );
  for (const line of [...reconciliation.lostDetails, ...reconciliation.conflicts]) console.log(`redis cluster failover: ${line}`);

  expect(promoted.port).not.toBe(victim.port);
  expect(relayAlive).toBe(true);
  expect(before.filter((s) => s.result === 'acked').length).toBeGreaterThan(0);
  expect(after.filter((s) => s.result === 'acked').length).toBeGreaterThan(0);
  expect(orphaned.length).toBeGreaterThan(0);
  expect(orphaned.filter((s) => s.result === 'acked')).toEqual([]);
  expect(load.submissions.filter((s) => s.result === 'no-reply')).toEqual([]);
  expect(load.submissions.filter((s) => s.result === 'refused-5xx')).toEqual([]);
  expect(open).toBe(0);
  expect(reconciliation.lostDetails).toEqual([]);
  expect(reconciliation.lost).toBe(0);
  expect(reconciliation.conflicts).toEqual([]);
  expect(reconciliation.unexplainedDuplicates).toEqual([]);
  expect(reconciliation.acknowledged).toBe(reconciliation.delivered + reconciliation.diverted + reconciliation.bounced);
}, 300_000);
