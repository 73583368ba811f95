/** The store-designs mode's design names; kept apart from designs.ts so option parsing loads no store or lmdb. */

/** The rows of `--mode store-designs`, in run order; `lmdb-nooverlap` only when asked for by name. */
export const DESIGNS = ['file-store', 'redis-store', 'lmdb-store', 'lmdb', 'lmdb-nooverlap', 'journal'] as const;
export type DesignId = (typeof DESIGNS)[number];
export const DEFAULT_DESIGNS: DesignId[] = ['file-store', 'redis-store', 'lmdb-store', 'lmdb', 'journal'];

/** Parses `--designs`: names from DESIGNS, comma-separated, run in the order given, each once. */
export function parseDesigns(value: string | undefined): DesignId[] {
  if (value === undefined) return [...DEFAULT_DESIGNS];
  const picked: DesignId[] = [];
  for (const raw of value.split(',')) {
    const name = raw.trim();
    if (!name) continue;
    if (!(DESIGNS as readonly string[]).includes(name)) throw new Error(`--designs: unknown design ${name} (one of ${DESIGNS.join(', ')})`);
    if (!picked.includes(name as DesignId)) picked.push(name as DesignId);
  }
  if (picked.length === 0) throw new Error('--designs: name at least one design');
  return picked;
}
