import { request } from 'node:https';
import type { LookupFunction } from '../resolver';

export interface PolicyFetchOptions {
  /** Resolves `mta-sts.<domain>`: the relay's own resolver, never the system's. */
  lookup: LookupFunction;
  /** Trust store; undefined means Node's default (which includes NODE_EXTRA_CA_CERTS). */
  ca?: string[];
  connectTimeout: number;
  totalTimeout: number;
  maxBytes: number;
  /** Port of the HTTPS server (443; tests may point elsewhere). */
  port?: number;
}

/** TLS-RPT result types (RFC 8460 §4.3) a failed fetch maps to. */
export type PolicyFetchFailure = 'sts-policy-fetch-error' | 'sts-webpki-invalid';

export class PolicyFetchError extends Error {
  override name = 'PolicyFetchError';
  constructor(
    message: string,
    readonly type: PolicyFetchFailure = 'sts-policy-fetch-error',
  ) {
    super(message);
  }
}

const CERT_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ALTNAME|LEAF_SIGNATURE/;

export type PolicyFetcher = (policyDomain: string) => Promise<string>;

/** The HTTPS URL of a domain's policy (RFC 8461 §3.3). */
export function policyUrl(policyDomain: string): string {
  return `https://mta-sts.${policyDomain}/.well-known/mta-sts.txt`;
}

/**
 * GET https://mta-sts.<domain>/.well-known/mta-sts.txt. The certificate must be valid for that
 * name (SNI sent); only 200 with text/plain counts; redirects are failures, never followed; the
 * body is capped; connect and total time are bounded. Resolves to the body text.
 */
export function createPolicyFetcher(options: PolicyFetchOptions): PolicyFetcher {
  return (policyDomain) =>
    new Promise<string>((resolve, reject) => {
      const host = `mta-sts.${policyDomain}`;
      let settled = false;
      const timers: NodeJS.Timeout[] = [];
      const finish = (err: Error | null, body?: string) => {
        if (settled) return;
        settled = true;
        for (const timer of timers) clearTimeout(timer);
        if (err) {
          req.destroy();
          reject(err);
        } else resolve(body ?? '');
      };
      const req = request({
        host,
        servername: host,
        port: options.port ?? 443,
        path: '/.well-known/mta-sts.txt',
        method: 'GET',
        headers: { accept: 'text/plain', 'user-agent': 'sealgate-mta-sts' },
        lookup: options.lookup,
        ...(options.ca ? { ca: options.ca } : {}),
        minVersion: 'TLSv1.2',
        rejectUnauthorized: true,
        agent: false,
      });
      timers.push(setTimeout(() => finish(new PolicyFetchError(`fetching ${policyUrl(policyDomain)} took longer than ${options.totalTimeout} ms`)), options.totalTimeout));
      req.on('socket', (socket) => {
        const connectTimer = setTimeout(() => finish(new PolicyFetchError(`connecting to ${host} took longer than ${options.connectTimeout} ms`)), options.connectTimeout);
        timers.push(connectTimer);
        socket.once('connect', () => clearTimeout(connectTimer));
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        const type = CERT_ERROR.test(err.code ?? '') ? 'sts-webpki-invalid' : 'sts-policy-fetch-error';
        finish(new PolicyFetchError(`fetching ${policyUrl(policyDomain)} failed: ${err.code ? `${err.code} ` : ''}${err.message}`, type));
      });
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        if (status !== 200) {
          res.resume();
          const where = status >= 300 && status < 400 ? ` (redirect to ${res.headers.location ?? 'nowhere'} not followed)` : '';
          return finish(new PolicyFetchError(`${policyUrl(policyDomain)} answered HTTP ${status}${where}`));
        }
        const mediaType = (res.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
        if (mediaType !== 'text/plain') {
          res.resume();
          return finish(new PolicyFetchError(`${policyUrl(policyDomain)} has media type "${mediaType || 'none'}", not text/plain`));
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > options.maxBytes) return finish(new PolicyFetchError(`${policyUrl(policyDomain)} is larger than ${options.maxBytes} bytes`));
          chunks.push(chunk);
        });
        res.on('error', (err) => finish(new PolicyFetchError(`reading ${policyUrl(policyDomain)} failed: ${err.message}`)));
        res.on('end', () => finish(null, Buffer.concat(chunks).toString('utf8')));
        res.on('close', () => finish(new PolicyFetchError(`${policyUrl(policyDomain)}: connection closed before the body ended`)));
      });
      req.end();
    });
}
