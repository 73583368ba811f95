import type { InboundHandle } from '../inbound/server';
import type { Store } from '../store/types';

/**
 * /healthz says the process is up (restart it when this fails); /readyz says it can take mail
 * right now: the store answers and every SMTP listener is bound (route traffic elsewhere when not).
 */

export interface CheckResult {
  ok: boolean;
  detail?: string;
}

export interface Readiness {
  ready: boolean;
  checks: Record<string, CheckResult>;
}

export interface ReadinessDeps {
  store: Pick<Store, 'ping'>;
  inbound: Pick<InboundHandle, 'listeners' | 'listening'>;
  /** How long the store may take to answer a ping. */
  timeoutMs?: number;
}

const DEFAULT_PING_TIMEOUT_MS = 2_000;

export async function checkReady({ store, inbound, timeoutMs = DEFAULT_PING_TIMEOUT_MS }: ReadinessDeps): Promise<Readiness> {
  const checks: Record<string, CheckResult> = {
    store: await pingStore(store, timeoutMs),
    listeners: inbound.listening()
      ? { ok: true, detail: inbound.listeners.map((l) => `${l.name} ${l.host}:${l.port}`).join(', ') }
      : { ok: false, detail: 'SMTP listeners are not accepting connections (starting or shutting down)' },
  };
  return { ready: Object.values(checks).every((c) => c.ok), checks };
}

export interface Liveness {
  ok: true;
  pid: number;
  uptimeSeconds: number;
}

export function checkLive(): Liveness {
  return { ok: true, pid: process.pid, uptimeSeconds: Math.round(process.uptime()) };
}

async function pingStore(store: Pick<Store, 'ping'>, timeoutMs: number): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<CheckResult>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, detail: `store did not answer within ${timeoutMs} ms` }), timeoutMs);
    timer.unref();
  });
  const ping = store.ping().then(
    (): CheckResult => ({ ok: true }),
    (err: Error): CheckResult => ({ ok: false, detail: err.message }),
  );
  try {
    return await Promise.race([ping, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
