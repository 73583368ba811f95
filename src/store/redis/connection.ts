import type { ConnectionOptions } from 'node:tls';

/** TLS settings for a `rediss://` connection beyond the system CAs (queue.redis.tls). */
export interface RedisTlsOptions {
  /** PEM CA certificate(s) for a Redis behind a private CA. */
  ca?: string;
  /** The name the Redis certificate is checked against when it differs from the URL's host. */
  servername?: string;
}

/**
 * The URL with its password replaced by `***`, for logs, errors and CLI output (a Redis password must never reach
 * them). Anything that does not parse is shown as `<unparsable redis url>` rather than echoed.
 */
export function redactRedisUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '<unparsable redis url>';
  }
  if (parsed.password) parsed.password = '***';
  return parsed.href;
}

/** `host:port` of a Redis URL (what error messages name). */
export function redisAddress(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || '6379'}`;
  } catch {
    return 'the configured address';
  }
}

/**
 * The URL and TLS options given to ioredis. A password from a file (queue.redis.passwordFile) goes into the URL
 * when the URL has none (ioredis lets a URL's password win over an option's, even an empty one). The scheme is
 * written lower-case: ioredis turns TLS on only for a literal `rediss://`.
 */
export function redisConnection(url: string, password?: string, tls?: RedisTlsOptions): { url: string; tls?: ConnectionOptions } {
  const parsed = new URL(url);
  if (password !== undefined && password !== '' && parsed.password === '') parsed.password = encodeURIComponent(password);
  const secure = parsed.protocol === 'rediss:';
  const tlsOptions: ConnectionOptions = {};
  if (tls?.ca !== undefined) tlsOptions.ca = tls.ca;
  if (tls?.servername !== undefined) tlsOptions.servername = tls.servername;
  return secure && Object.keys(tlsOptions).length > 0 ? { url: parsed.href, tls: tlsOptions } : { url: parsed.href };
}

/** A secret file's content without the trailing newline editors and `echo` add. */
export function secretFromFile(text: string): string {
  return text.replace(/\r?\n$/, '');
}
