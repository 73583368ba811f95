import { HELP, parseOptions } from '../../bench/run';

describe('parseOptions', () => {
  it('selects every leg, two Redis processes and needs Postfix by default', () => {
    const options = parseOptions([])!;
    expect(options.legs).toEqual(['lmdb', 'default', 'file', 'redis', 'redis-multi', 'redis-cluster', 'redis-cluster-multi', 'postfix-reuse', 'postfix']);
    expect(options.processes).toBe(2);
    expect(options.postfix).toBe(true);
  });

  it('keeps --short covering every leg with a smaller load', () => {
    const options = parseOptions(['--short'])!;
    expect(options.messages).toBe(300);
    expect(options.legs).toHaveLength(9);
  });

  it('takes --legs and --processes, and needs Postfix only for a Postfix leg', () => {
    const options = parseOptions(['--legs', 'redis-multi,default', '--processes', '3'])!;
    expect(options.legs).toEqual(['default', 'redis-multi']);
    expect(options.processes).toBe(3);
    expect(options.postfix).toBe(false);
    expect(parseOptions(['--legs', 'postfix-reuse'])!.postfix).toBe(true);
  });

  it('keeps --backends and --no-postfix meaning what they meant: lmdb brings the default start, whose store it is', () => {
    expect(parseOptions(['--backends', 'file', '--no-postfix'])!.legs).toEqual(['file']);
    expect(parseOptions(['--backends', 'lmdb,file', '--no-postfix'])!.legs).toEqual(['lmdb', 'default', 'file']);
    expect(() => parseOptions(['--backends', 'sqlite'])).toThrow(/one or more of lmdb, file, redis/);
  });

  it('runs the Redis Cluster legs with the Redis store, and gives --processes to the cluster multi-process leg too', () => {
    expect(parseOptions(['--backends', 'redis'])!.legs).toEqual(['redis', 'redis-multi', 'redis-cluster', 'redis-cluster-multi', 'postfix-reuse', 'postfix']);
    expect(parseOptions(['--backends', 'file', '--no-postfix'])!.legs).not.toContain('redis-cluster');
    const options = parseOptions(['--short', '--legs', 'redis,redis-cluster,postfix-reuse'])!;
    expect(options.legs).toEqual(['redis', 'redis-cluster', 'postfix-reuse']);
    expect(options.postfix).toBe(true);
    const multi = parseOptions(['--legs', 'redis-cluster-multi', '--processes', '3'])!;
    expect(multi).toMatchObject({ legs: ['redis-cluster-multi'], processes: 3, postfix: false });
    for (const text of ['redis-cluster ', 'redis-cluster-multi', 'summed over all 6 nodes']) expect(HELP).toContain(text);
  });

  it('refuses one process for the multi-process leg and unknown legs', () => {
    expect(() => parseOptions(['--processes', '1'])).toThrow(/at least 2/);
    expect(() => parseOptions(['--legs', 'cluster'])).toThrow(/unknown leg cluster/);
  });

  it('documents the new options in --help', () => {
    expect(parseOptions(['--help'])).toBeUndefined();
    for (const text of ['--legs LIST', '--processes N', 'postfix-reuse', 'redis-multi', 'npm start']) expect(HELP).toContain(text);
  });

  it('parses the store-designs mode with its own defaults, output file and sizes', () => {
    const options = parseOptions(['--mode', 'store-designs', '--designs', 'journal,lmdb', '--large-size', '5MB', '--connections', '32'])!;
    expect(options.mode).toBe('store-designs');
    expect(options.designs).toEqual(['journal', 'lmdb']);
    expect(options.largeSize).toBe(5 * 1024 ** 2);
    expect(options.connections).toBe(32);
    expect(options.messages).toBe(2000);
    expect(options.size).toBe(10 * 1024);
    expect(options.out).toMatch(/bench\/results\/store-designs\.json$/);
    expect(parseOptions(['--mode', 'store-designs', '--large-size', '0'])!.largeSize).toBe(0);
    expect(parseOptions(['--mode', 'store-designs'])!.designs).toEqual(['file-store', 'redis-store', 'lmdb-store', 'lmdb', 'journal']);
    expect(parseOptions([])!.out).toMatch(/bench\/results\/latest\.json$/);
    expect(() => parseOptions(['--mode', 'store-designs', '--designs', 'sqlite'])).toThrow(/unknown design/);
    expect(HELP).toContain('store-designs');
  });
});
