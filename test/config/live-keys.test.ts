import { LIVE_KEYS, RESTART_ONLY_KEYS } from '../../src/config/live';
import { configSchema } from '../../src/config/schema';

/** The object schema under wrappers (default, prefault, optional, nullable), or undefined for a leaf. */
function objectShape(schema: unknown): Record<string, unknown> | undefined {
  let current = schema as { _zod?: { def?: { type?: string; innerType?: unknown; shape?: Record<string, unknown> } } };
  for (let i = 0; i < 10 && current?._zod?.def; i++) {
    const def = current._zod.def;
    if (def.type === 'object') return def.shape;
    if (!def.innerType) return undefined;
    current = def.innerType;
  }
  return undefined;
}

/** Every setting two levels deep (`section` for a leaf or a record such as `domains`, else `section.key`), as changedKeys reports them. */
function schemaKeys(): string[] {
  const keys: string[] = [];
  for (const [section, schema] of Object.entries(configSchema.shape)) {
    const shape = objectShape(schema);
    if (!shape) keys.push(section);
    else for (const key of Object.keys(shape)) keys.push(`${section}.${key}`);
  }
  return keys;
}

const covers = (entry: string, key: string) => key === entry || key.startsWith(`${entry}.`);

describe('every setting is either applied on reload or refused as restart-only', () => {
  const keys = schemaKeys();

  test('the walk sees the sections and their keys', () => {
    expect(keys).toEqual(expect.arrayContaining(['hostname', 'domains', 'listeners', 'limits.maxRecipients', 'tls.cert', 'portal.cert', 'delivery.retrySchedule', 'queue.redis']));
    expect(keys.length).toBeGreaterThan(100);
  });

  test.each(schemaKeys())('%s', (key) => {
    const live = LIVE_KEYS.filter((entry) => covers(entry, key));
    const restart = RESTART_ONLY_KEYS.filter((entry) => covers(entry, key));
    // Exactly one list answers for it: a key in neither would be silently ignored by a reload.
    expect({ key, coveredBy: [...live, ...restart] }).toEqual({ key, coveredBy: [expect.any(String)] });
  });

  test('no entry names a setting the schema does not have', () => {
    for (const entry of [...LIVE_KEYS, ...RESTART_ONLY_KEYS]) expect(keys.some((key) => covers(entry, key))).toBe(true);
  });
});
