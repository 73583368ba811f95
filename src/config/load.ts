import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import stringify from 'safe-stable-stringify';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ADMIN_SCOPES, ADMIN_TOKEN_MIN_LENGTH, AUDIT_FILE_NEXT_TO_QUEUE, configSchema, EVIDENCE_PATH_NEXT_TO_QUEUE, REPORTS_FOLDER_NEXT_TO_QUEUE, type AdminScope, type Config } from './schema';

/** The repository (or installed package) root: src/config and dist/config are both two levels down. */
export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..');
export const DEFAULT_CONFIG_FILE = path.join(PACKAGE_ROOT, 'config', 'default.yaml');

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface LoadedConfig {
  config: Config;
  /** Absolute path of the file the config came from; relative paths inside it are resolved against its folder. */
  file: string;
  /**
   * What the file says, as `sha256:<hex>` of its keys and values (sorted; comments and layout ignored, and
   * environment overrides left out), so a CLI run with another environment can tell whether the running
   * relay uses the file as it is on disk.
   */
  digest: string;
}

type Env = Record<string, string | undefined>;

export function resolveConfigFile(explicit: string | undefined, env: Env = process.env): string {
  return path.resolve(explicit ?? env.SEALGATE_CONFIG ?? DEFAULT_CONFIG_FILE);
}

export function loadConfig(explicitFile?: string, env: Env = process.env): LoadedConfig {
  const file = resolveConfigFile(explicitFile, env);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(`config file ${file} is not valid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
  }
  const raw: unknown = doc.toJS() ?? {};
  return { config: parseConfig(raw, env, path.dirname(file), file), file, digest: configDigest(raw) };
}

/** `sha256:` and the hex digest of a config's canonical JSON (keys sorted at every level). */
export function configDigest(raw: unknown): string {
  return `sha256:${createHash('sha256')
    .update(stringify(raw) ?? 'null', 'utf8')
    .digest('hex')}`;
}

/** Validates a config object (already read from YAML), applies env overrides and resolves relative paths. */
export function parseConfig(raw: unknown, env: Env, baseDir: string, source = 'config'): Config {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`${source}: expected a mapping of keys at the top level`);
  }
  const withEnv = applyEnvOverrides(structuredClone(raw) as Record<string, unknown>, env);
  const result = configSchema.safeParse(withEnv);
  if (!result.success) throw new ConfigError(`${source} is invalid:\n${formatIssues(result.error.issues)}`);
  return resolvePaths(result.data, baseDir);
}

function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((issue) => {
      const key = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
      if (issue.code === 'unrecognized_keys') {
        const prefix = issue.path.length > 0 ? `${key}.` : '';
        return `  - ${issue.keys.map((k) => prefix + k).join(', ')}: unknown key (check the spelling against docs/configuration.md)`;
      }
      return `  - ${key}: ${issue.message}`;
    })
    .join('\n');
}

function section(target: Record<string, unknown>, key: string): Record<string, unknown> {
  const existing = target[key];
  if (typeof existing === 'object' && existing !== null && !Array.isArray(existing)) return existing as Record<string, unknown>;
  const created: Record<string, unknown> = {};
  target[key] = created;
  return created;
}

function applyEnvOverrides(raw: Record<string, unknown>, env: Env): Record<string, unknown> {
  if (env.SEALGATE_REDIS_URL) {
    const queue = section(raw, 'queue');
    queue.backend = 'redis';
    section(queue, 'redis').url = env.SEALGATE_REDIS_URL;
  }
  if (env.SEALGATE_REDIS_PASSWORD_FILE) section(section(raw, 'queue'), 'redis').passwordFile = env.SEALGATE_REDIS_PASSWORD_FILE;
  if (env.SEALGATE_DNS_SERVERS) {
    section(raw, 'dns').servers = env.SEALGATE_DNS_SERVERS.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  }
  if (env.SEALGATE_LOG_LEVEL) section(raw, 'log').level = env.SEALGATE_LOG_LEVEL;
  const envTokens: Array<{ name: string; token: string }> = [];
  if (env.SEALGATE_ADMIN_TOKEN) envTokens.push({ name: 'env', token: env.SEALGATE_ADMIN_TOKEN });
  if (env.SEALGATE_ADMIN_TOKEN_FILE) envTokens.push({ name: 'env-file', token: readTokenFile(env.SEALGATE_ADMIN_TOKEN_FILE) });
  if (envTokens.length > 0) {
    const scopes = env.SEALGATE_ADMIN_TOKEN_SCOPES ? parseScopes(env.SEALGATE_ADMIN_TOKEN_SCOPES) : undefined;
    const admin = section(raw, 'admin');
    const tokens: unknown[] = Array.isArray(admin.tokens) ? admin.tokens : [];
    admin.tokens = [...tokens, ...envTokens.map((t) => (scopes ? { ...t, scopes } : t))];
  }
  return raw;
}

/** SEALGATE_ADMIN_TOKEN_FILE (a Docker or Kubernetes secret): the file's text without surrounding whitespace. */
function readTokenFile(file: string): string {
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ConfigError(`SEALGATE_ADMIN_TOKEN_FILE: cannot read ${file}: ${(err as Error).message}`);
  }
  if (token.length < ADMIN_TOKEN_MIN_LENGTH) {
    throw new ConfigError(`SEALGATE_ADMIN_TOKEN_FILE: the token in ${file} has ${token.length} characters; admin tokens must be at least ${ADMIN_TOKEN_MIN_LENGTH}`);
  }
  return token;
}

/** SEALGATE_ADMIN_TOKEN_SCOPES: comma-separated scope names for the environment's tokens. */
function parseScopes(value: string): AdminScope[] {
  const names = value
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  const unknown = names.filter((n) => !(ADMIN_SCOPES as readonly string[]).includes(n));
  if (names.length === 0 || unknown.length > 0) {
    throw new ConfigError(`SEALGATE_ADMIN_TOKEN_SCOPES: ${unknown.length > 0 ? `unknown scope ${unknown.join(', ')}` : 'no scope given'}; use a comma-separated list of ${ADMIN_SCOPES.join(', ')}`);
  }
  return [...new Set(names)] as AdminScope[];
}

function resolvePaths(config: Config, baseDir: string): Config {
  const abs = (p: string) => path.resolve(baseDir, p);
  config.queue.path = abs(config.queue.path);
  if (config.queue.redis.passwordFile) config.queue.redis.passwordFile = abs(config.queue.redis.passwordFile);
  if (config.queue.redis.tls.ca) config.queue.redis.tls.ca = abs(config.queue.redis.tls.ca);
  config.auth.usersFile = abs(config.auth.usersFile);
  if (config.tls.cert) config.tls.cert = abs(config.tls.cert);
  if (config.tls.key) config.tls.key = abs(config.tls.key);
  if (config.outbound.extraCaFile) config.outbound.extraCaFile = abs(config.outbound.extraCaFile);
  if (config.audit.file === AUDIT_FILE_NEXT_TO_QUEUE) config.audit.file = path.join(path.dirname(config.queue.path), 'audit.log');
  else if (config.audit.file) config.audit.file = abs(config.audit.file);
  const nextToQueue = (name: string): string => path.join(path.dirname(config.queue.path), name);
  config.evidence.path = config.evidence.path === EVIDENCE_PATH_NEXT_TO_QUEUE ? nextToQueue('evidence') : abs(config.evidence.path);
  if (config.evidence.anchorCopy) config.evidence.anchorCopy = abs(config.evidence.anchorCopy);
  config.reports.folder = config.reports.folder === REPORTS_FOLDER_NEXT_TO_QUEUE ? nextToQueue('reports') : abs(config.reports.folder);
  if (config.mtaSts.extraCaFile) config.mtaSts.extraCaFile = abs(config.mtaSts.extraCaFile);
  config.portal.keyFile = abs(config.portal.keyFile);
  if (config.portal.cert) config.portal.cert = abs(config.portal.cert);
  if (config.portal.key) config.portal.key = abs(config.portal.key);
  if (config.portal.dkim) config.portal.dkim.keyFile = abs(config.portal.dkim.keyFile);
  if (config.tlsrpt.dkim) config.tlsrpt.dkim.keyFile = abs(config.tlsrpt.dkim.keyFile);
  if (config.reports.dkim) config.reports.dkim.keyFile = abs(config.reports.dkim.keyFile);
  if (config.tlsrpt.extraCaFile) config.tlsrpt.extraCaFile = abs(config.tlsrpt.extraCaFile);
  return config;
}
