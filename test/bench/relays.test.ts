import { combineRelays, defaultStartConfig, defaultStartProblems, parseRedisCpu, postfixDeliveries, postfixReuseConfig, sumRedisCpu, type RelayUnderTest } from '../../bench/relays';
import { endpointFor } from '../../bench/load';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';

const world = {
  dns: { servers: ['127.0.0.2:5353'] },
  outbound: { port: 2525, extraCaFile: '/tmp/ca.pem' },
  mtaSts: { port: 8443, extraCaFile: '/tmp/ca.pem' },
};

describe('defaultStartConfig', () => {
  const shipped = parse(readFileSync(path.join(__dirname, '..', '..', 'config', 'default.yaml'), 'utf8')) as Record<string, unknown>;
  const config = defaultStartConfig(shipped, world);

  it('changes only the ports and what reaches the sink world', () => {
    const changed = Object.keys(config).filter((key) => JSON.stringify(config[key]) !== JSON.stringify(shipped[key]));
    expect(changed.sort()).toEqual(['admin', 'dns', 'listeners', 'mtaSts', 'outbound', 'portal']);
    expect(config.admin).toEqual({ port: 0 });
    expect(config.portal).toEqual({ ...(shipped.portal as object), port: 0 });
    expect(config.dns).toEqual(world.dns);
    expect(config.outbound).toEqual(world.outbound);
    expect(config.mtaSts).toEqual(world.mtaSts);
  });

  it('keeps every shipped listener with its TLS, AUTH and trusted networks, on a free port', () => {
    const shippedListeners = shipped.listeners as Array<Record<string, unknown>>;
    expect(config.listeners).toEqual(shippedListeners.map((listener) => ({ ...listener, port: 0 })));
    expect((config.listeners as Array<Record<string, unknown>>).find((l) => l.name === 'smarthost')).toMatchObject({ auth: 'optional', trustedNetworks: ['127.0.0.0/8'] });
  });

  it('leaves the store, logging, certificate and admin switch at the shipped defaults', () => {
    expect(config.queue).toEqual(shipped.queue);
    expect(config.log).toEqual(shipped.log);
    expect(config.tls).toEqual(shipped.tls);
    expect((config.admin as Record<string, unknown>).enabled).toBeUndefined();
  });
});

describe('postfixReuseConfig', () => {
  it('turns TLS connection reuse on through tlsproxy and caches every next hop', () => {
    const { mainCf, masterCf } = postfixReuseConfig({ 'a.test': '127.0.0.10:2525', 'b.test': '127.0.0.11:2525' });
    expect(mainCf.split('\n')).toEqual(['smtp_tls_connection_reuse = yes', 'smtp_connection_cache_destinations = [127.0.0.10]:2525 [127.0.0.11]:2525', '']);
    expect(masterCf).toMatch(/^tlsproxy\s+unix\s+-\s+-\s+n\s+-\s+0\s+tlsproxy\n$/);
  });
});

describe('parseRedisCpu', () => {
  it('adds the server and its forked children, system and user', () => {
    const info = '# CPU\r\nused_cpu_sys:1.500000\r\nused_cpu_user:2.250000\r\nused_cpu_sys_children:0.125000\r\nused_cpu_user_children:0.125000\r\nused_cpu_sys_main_thread:1.0\r\n';
    expect(parseRedisCpu(info)).toBeCloseTo(4, 6);
  });
});

describe('sumRedisCpu', () => {
  it('adds every node of a cluster, masters and replicas, each with its forked children', () => {
    const node = (sys: number, user: number, children = 0): string =>
      `# CPU\r\nused_cpu_sys:${sys}\r\nused_cpu_user:${user}\r\nused_cpu_sys_children:${children}\r\nused_cpu_user_children:0\r\nused_cpu_user_main_thread:${user}\r\n`;
    const infos = [node(1, 2), node(0.5, 0.25, 0.25), node(3, 1), node(0.125, 0.125), node(0, 0), node(0.25, 0.5)];
    expect(sumRedisCpu(infos)).toBeCloseTo(9, 6);
    expect(sumRedisCpu([])).toBe(0);
  });
});

describe('combineRelays', () => {
  const stops: jest.Mock[] = [];
  const relay = (port: number, cpu: number, rss: number): RelayUnderTest => ({
    label: `r${port}`,
    leg: 'redis',
    processes: 1,
    host: '127.0.0.1',
    port,
    cpuSeconds: () => ({ total: cpu, system: cpu / 4 }),
    memory: () => ({ rss }),
    kernelPeakRss: () => rss,
    stop: (() => {
      const stop = jest.fn(async () => undefined);
      stops.push(stop);
      return stop;
    })(),
  });

  it('sums CPU and memory over the processes and spreads the load over their listeners', async () => {
    const parts = [relay(2001, 2, 100), relay(2002, 6, 150)];
    const combined = combineRelays(parts, 'redis-multi', 'two');
    expect(combined).toMatchObject({ label: 'two', leg: 'redis-multi', processes: 2 });
    expect(combined.endpoints).toEqual([
      { host: '127.0.0.1', port: 2001 },
      { host: '127.0.0.1', port: 2002 },
    ]);
    expect(combined.cpuSeconds()).toEqual({ total: 8, system: 2 });
    expect(combined.memory().rss).toBe(250);
    // One process's VmHWM is no peak of the sum: the sampled sum is used instead.
    expect(combined.kernelPeakRss()).toBeUndefined();
    await combined.stop();
    for (const stop of stops) expect(stop).toHaveBeenCalledTimes(1);
  });
});

describe('endpointFor', () => {
  it('hands the connections to the listeners in turn', () => {
    const endpoints = [
      { host: '127.0.0.1', port: 1 },
      { host: '127.0.0.1', port: 2 },
    ];
    expect([0, 1, 2, 3, 4].map((worker) => endpointFor(endpoints, worker).port)).toEqual([1, 2, 1, 2, 1]);
    expect(() => endpointFor([], 0)).toThrow(/no endpoint/);
  });
});

describe('defaultStartProblems', () => {
  const line = (entry: object): string => JSON.stringify({ level: 'info', ...entry });

  it('accepts a start with the default (lmdb) store and the admin API listening', () => {
    const log = [line({ event: 'admin-started', port: 41000 }), 'sealgate: a plain line', line({ event: 'relay-started', backend: 'lmdb' })].join('\n');
    expect(defaultStartProblems(log)).toEqual([]);
  });

  it('names a start without the admin API or on another store', () => {
    expect(defaultStartProblems(line({ event: 'relay-started', backend: 'redis' }))).toEqual(['store redis, not lmdb', 'no admin API listening']);
    expect(defaultStartProblems(line({ event: 'relay-started', backend: 'file' }))).toContain('store file, not lmdb');
  });
});

describe('postfixDeliveries', () => {
  it('counts sent deliveries and those Postfix marks as over a reused connection', () => {
    const log = [
      'Nov 30 08:48:08 postfix postfix/smtp[20181]: 36E6541C117: to=<u1@bench-4.test>, relay=127.0.0.13[127.0.0.13]:40651, delay=0.23, delays=0.02/0/0.16/0.05, dsn=2.0.0, status=sent (250 2.0.0 Ok)',
      'Nov 30 08:48:08 postfix postfix/smtp[20180]: 2A92D41C981: to=<u2@bench-4.test>, relay=127.0.0.13[127.0.0.13]:40651, delay=0.28, delays=0.06/0/0.17/0.05, conn_use=3, dsn=2.0.0, status=sent (250 2.0.0 Ok)',
      'Nov 30 08:48:08 postfix postfix/smtp[20180]: 3A07841C755: to=<u3@bench-4.test>, relay=127.0.0.13[127.0.0.13]:40651, delay=1, delays=0.06/0/0.17/0.05, conn_use=2, dsn=4.4.2, status=deferred (lost connection)',
      'Nov 30 08:48:08 postfix postfix/qmgr[20100]: 36E6541C117: removed',
    ].join('\n');
    expect(postfixDeliveries(log)).toEqual({ sent: 2, reused: 1 });
  });
});
