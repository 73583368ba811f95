import { memoryFlags } from '../../src/cli/commands/start';
import { configSchema } from '../../src/config/schema';

const minimal = { listeners: [{ name: 'smarthost', port: 2525, tls: 'starttls', auth: 'optional' }] };

describe('memory settings at start', () => {
  test('by default the relay asks V8 to optimize for size; memory.optimizeForSize: false leaves V8 as it is', () => {
    expect(memoryFlags(configSchema.parse(minimal))).toEqual(['--optimize-for-size']);
    expect(memoryFlags(configSchema.parse({ ...minimal, memory: { optimizeForSize: false } }))).toEqual([]);
  });
});
