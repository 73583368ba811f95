import type { LoadedConfig } from '../config/load';
import type { Config } from '../config/schema';

/** What the running relay's /healthz says about the config it runs with. */
export interface RunningRelay {
  url: string;
  version: string | null;
  digest: string | null;
  loadedAt: string | null;
}

const ASK_TIMEOUT_MS = 1_500;

/**
 * The admin API's base URL as the config file gives it; undefined when the admin API is off or bound to port 0
 * (any free port: only the relay's log tells which, so the CLI cannot find it).
 */
export function adminBaseUrl(admin: Config['admin']): string | undefined {
  if (!admin.enabled || admin.port === 0) return undefined;
  const host = admin.host === '0.0.0.0' ? '127.0.0.1' : admin.host === '::' ? '::1' : admin.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${admin.port}`;
}

/** Asks the relay the config names (its /healthz, no token needed); undefined when none answers. */
export async function askRunningRelay(config: Config, timeoutMs = ASK_TIMEOUT_MS): Promise<RunningRelay | undefined> {
  const url = adminBaseUrl(config.admin);
  if (!url) return undefined;
  try {
    const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!response.ok) return undefined;
    const body = (await response.json()) as { version?: string; config?: { digest?: string; loadedAt?: string } };
    return { url, version: body.version ?? null, digest: body.config?.digest ?? null, loadedAt: body.config?.loadedAt ?? null };
  } catch {
    return undefined;
  }
}

/** The warning to print when the file on disk is not what the running relay uses, or undefined when it is (or no relay answers). */
export function configDriftWarning(loaded: LoadedConfig, relay: RunningRelay | undefined): string | undefined {
  if (!relay?.digest || relay.digest === loaded.digest) return undefined;
  return (
    `warning: ${loaded.file} differs from the configuration the running relay uses ` +
    `(relay at ${relay.url} runs ${short(relay.digest)}, loaded ${relay.loadedAt ?? 'at an unknown time'}; the file is ${short(loaded.digest)}): ` +
    'what this command reads from the file is not in force until `sealgate reload`'
  );
}

const short = (digest: string) => digest.slice(0, 'sha256:'.length + 12);

/** POSTs /api/v1/reload with a token from the config (the environment's first); the JSON answer and its status. */
export async function requestReload(config: Config, baseUrl: string, timeoutMs = 30_000): Promise<{ status: number; body: Record<string, unknown> }> {
  const token = reloadToken(config.admin.tokens);
  const response = await fetch(`${baseUrl}/api/v1/reload`, {
    method: 'POST',
    headers: token ? { authorization: `Bearer ${token}` } : {},
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: response.status, body: (await response.json().catch(() => ({}))) as Record<string, unknown> };
}

/**
 * The environment's token (SEALGATE_ADMIN_TOKEN, then SEALGATE_ADMIN_TOKEN_FILE) if it may operate, else the first
 * configured token that may (tokens without scopes may).
 */
function reloadToken(tokens: ReadonlyArray<{ name: string; token: string; scopes?: readonly string[] }>): string | undefined {
  const mayOperate = tokens.filter((t) => t.scopes === undefined || t.scopes.includes('operate'));
  return (mayOperate.find((t) => t.name === 'env') ?? mayOperate.find((t) => t.name === 'env-file') ?? mayOperate[0])?.token;
}
