import { HELP, parseOptions } from '../../bench/run';

describe('parseOptions', () => {
  it('selects every leg, two Redis processes and needs Postfix by default', () => {
    const options = parseOptions([])!;
    expect(options.legs).toEqual(['file', 'default', 'redis', 'redis-multi', 'postfix-reuse', 'postfix']);
    expect(options.processes).toBe(2);
    expect(options.postfix).toBe(true);
  });

  it('keeps --short covering every leg with a smaller load', () => {
    const options = parseOptions(['--short'])!;
    expect(options.messages).toBe(300);
    expect(options.legs).toHaveLength(6);
  });

  it('takes --legs and --processes, and needs Postfix only for a Postfix leg', () => {
    const options = parseOptions(['--legs', 'redis-multi,default', '--processes', '3'])!;
    expect(options.legs).toEqual(['default', 'redis-multi']);
    expect(options.processes).toBe(3);
    expect(options.postfix).toBe(false);
    expect(parseOptions(['--legs', 'postfix-reuse'])!.postfix).toBe(true);
  });

  it('keeps --backends and --no-postfix meaning what they meant', () => {
    expect(parseOptions(['--backends', 'file', '--no-postfix'])!.legs).toEqual(['file', 'default']);
  });

  it('refuses one process for the multi-process leg and unknown legs', () => {
    expect(() => parseOptions(['--processes', '1'])).toThrow(/at least 2/);
    expect(() => parseOptions(['--legs', 'cluster'])).toThrow(/unknown leg cluster/);
  });

  it('documents the new options in --help', () => {
    expect(parseOptions(['--help'])).toBeUndefined();
    for (const text of ['--legs LIST', '--processes N', 'postfix-reuse', 'redis-multi', 'npm start']) expect(HELP).toContain(text);
  });
});
