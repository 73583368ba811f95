import { PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';

/** V8's own growth factor of the young generation (each resize doubles it). */
const V8_GROWTH_FACTOR = 2;

/**
 * V8's growth factor for the next young-generation resize: V8's doubling while that stays within `limit`, else 1
 * (no growth); 0 is no limit. `newSpaceBytes` is V8's new_space size, both semi-spaces: the doubled semi-space
 * is at most `limit` exactly when both are now at most `limit`.
 */
export function semiSpaceGrowthFactor(newSpaceBytes: number, limit: number): number {
  return limit <= 0 || newSpaceBytes <= limit ? V8_GROWTH_FACTOR : 1;
}

/**
 * Holds V8's young generation, where garbage piles up between scavenges, to semi-spaces of at most `limit`
 * bytes (memory.maxSemiSpace; 0: V8's own bound). --max-semi-space-size only counts when node starts, which
 * neither `npm start` nor the image's entry point can pass from the config; V8 reads its growth factor at every
 * resize, so after each collection the factor is set so that the next doubling stays within the limit
 * (bin/sealgate keeps it from growing while the modules load). A bound on garbage, not on the heap: old space
 * stays unbounded, so a big backlog cannot crash-loop. Returns the function that stops watching.
 */
export function boundSemiSpace(limit: number): () => void {
  let factor: number | undefined;
  const adjust = () => {
    const young = v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space');
    const next = semiSpaceGrowthFactor(young?.space_size ?? 0, limit);
    if (next === factor) return;
    factor = next;
    v8.setFlagsFromString(`--semi-space-growth-factor=${next}`);
  };
  adjust();
  if (limit <= 0) return () => undefined;
  const observer = new PerformanceObserver(adjust);
  observer.observe({ entryTypes: ['gc'] });
  return () => observer.disconnect();
}
