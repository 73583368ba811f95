/**
 * /healthz says the process is up (restart it when this fails); /readyz says it can take mail
 * right now (route traffic elsewhere when not). What readiness checks is passed in as named
 * probes (relay.ts: the store answers, every SMTP listener is bound), so this module knows
 * nothing of the modules it checks.
 */

export interface CheckResult {
  ok: boolean;
  detail?: string;
}

export interface Readiness {
  ready: boolean;
  checks: Record<string, CheckResult>;
}

/** One readiness check; it reports a problem as `{ ok: false, detail }` rather than throwing. */
export type ReadinessProbe = () => CheckResult | Promise<CheckResult>;

/** Runs the probes one after the other, in order; ready when every one is ok. */
export async function checkReady(probes: Record<string, ReadinessProbe>): Promise<Readiness> {
  const checks: Record<string, CheckResult> = {};
  for (const [name, probe] of Object.entries(probes)) checks[name] = await probe();
  return { ready: Object.values(checks).every((c) => c.ok), checks };
}

const DEFAULT_PING_TIMEOUT_MS = 2_000;

/** Ok when the store answers `ping()` within `timeoutMs`. */
export function storeProbe(store: { ping(): Promise<unknown> }, timeoutMs = DEFAULT_PING_TIMEOUT_MS): ReadinessProbe {
  return async () => {
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
  };
}

export interface ListenerAddress {
  name: string;
  host: string;
  port: number;
}

/** Ok while the SMTP listeners accept connections; the detail names the bound addresses. */
export function listenersProbe(source: { listening(): boolean; listeners: readonly ListenerAddress[] }): ReadinessProbe {
  return () =>
    source.listening()
      ? { ok: true, detail: source.listeners.map((l) => `${l.name} ${l.host}:${l.port}`).join(', ') }
      : { ok: false, detail: 'SMTP listeners are not accepting connections (starting or shutting down)' };
}
