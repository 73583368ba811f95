import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { memoryFlags } from '../../src/cli/commands/start';
import { semiSpaceGrowthFactor } from '../../src/cli/young-generation';
import { configSchema } from '../../src/config/schema';

const MiB = 1024 * 1024;
const minimal = { listeners: [{ name: 'smarthost', port: 2525, tls: 'starttls', auth: 'optional' }] };
const REPO = path.resolve(__dirname, '..', '..');

/**
 * A node process that bounds its young generation as the relay's start does (after bin/sealgate's hold), then
 * allocates short-lived garbage in many event-loop turns while keeping a growing live set, as a submission burst
 * does. Prints the largest new_space size V8 reported (both semi-spaces).
 */
function largestNewSpace(limit: number): number {
  const script = `
    const v8 = require('node:v8');
    v8.setFlagsFromString('--semi-space-growth-factor=1');
    require('tsx/cjs');
    const { boundSemiSpace } = require(${JSON.stringify(path.join(REPO, 'src', 'cli', 'young-generation.ts'))});
    const stop = boundSemiSpace(${limit});
    const keep = [];
    let largest = 0;
    let turns = 0;
    const turn = () => {
      for (let i = 0; i < 2000; i++) {
        const garbage = { text: 'x'.repeat(100) + i, list: new Array(20).fill(i) };
        if (i % 40 === 0) keep.push(Buffer.from(garbage.text).toString('base64'));
      }
      const young = v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space');
      largest = Math.max(largest, young.space_size);
      if (++turns < 400) setImmediate(turn);
      else { stop(); process.stdout.write(String(largest)); }
    };
    turn();
  `;
  return Number(execFileSync(process.execPath, ['-e', script], { cwd: REPO, encoding: 'utf8' }));
}

describe('the young-generation bound at start (memory.maxSemiSpace)', () => {
  test('memory.maxSemiSpace: 2 MiB by default, a size like the other size settings, 0 for V8 own bound', () => {
    expect(configSchema.parse(minimal).memory.maxSemiSpace).toBe(2 * MiB);
    expect(configSchema.parse({ ...minimal, memory: { maxSemiSpace: '8MiB' } }).memory.maxSemiSpace).toBe(8 * MiB);
    expect(configSchema.parse({ ...minimal, memory: { maxSemiSpace: 0 } }).memory.maxSemiSpace).toBe(0);
    expect(configSchema.safeParse({ ...minimal, memory: { maxSemiSpace: 'lots' } }).success).toBe(false);
    // The bound on the young generation is a separate setting from --optimize-for-size.
    expect(memoryFlags(configSchema.parse({ ...minimal, memory: { maxSemiSpace: 0 } }))).toEqual(['--optimize-for-size']);
  });

  test('the young generation doubles while both semi-spaces fit the limit, then stops growing; 0 leaves V8 doubling', () => {
    // new_space counts both semi-spaces: 2 MiB of them doubles to semi-spaces of 2 MiB, the limit.
    expect(semiSpaceGrowthFactor(1 * MiB, 2 * MiB)).toBe(2);
    expect(semiSpaceGrowthFactor(2 * MiB, 2 * MiB)).toBe(2);
    expect(semiSpaceGrowthFactor(4 * MiB, 2 * MiB)).toBe(1);
    expect(semiSpaceGrowthFactor(32 * MiB, 2 * MiB)).toBe(1);
    expect(semiSpaceGrowthFactor(32 * MiB, 0)).toBe(2);
  });

  test('a process that bounds its semi-spaces at 2 MiB keeps them there under a burst of garbage; unbounded, the same burst grows them past it', () => {
    expect(largestNewSpace(2 * MiB)).toBeLessThanOrEqual(2 * 2 * MiB);
    expect(largestNewSpace(0)).toBeGreaterThan(2 * 2 * MiB);
  }, 60_000);
});
