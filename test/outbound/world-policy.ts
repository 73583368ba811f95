import { parseConfig } from '../../src/config/load';
import { createPolicyRuntime, memoryPolicyCache, type PolicyCache, type PolicyRuntime } from '../../src/policy';
import type { World } from '../support/world';

/** The policy runtime a relay pointed at the test world would have (short DNS timeouts), with `extra` config on top. */
export function worldPolicyRuntime(world: World, extra: Record<string, unknown> = {}, cache: PolicyCache = memoryPolicyCache()): PolicyRuntime {
  const relay = world.relayConfig();
  const config = parseConfig(
    {
      hostname: 'sealgate.test',
      listeners: [{ name: 'submission', port: 0, tls: 'starttls', auth: 'required' }],
      ...relay,
      dns: { ...relay.dns, timeout: 1000, tries: 1 },
      ...extra,
    },
    {},
    '/tmp',
  );
  return createPolicyRuntime(config, { cache });
}
