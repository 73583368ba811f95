import { request } from 'node:https';
import type { LookupFunction } from '../policy/resolver';

export interface HttpsPostOptions {
  /** Resolves the rua's host: the relay's one resolver, never the system's. */
  lookup: LookupFunction;
  /** Trust store; undefined means Node's default (which includes NODE_EXTRA_CA_CERTS). */
  ca?: string[];
  /** Whole-request limit (ms). */
  timeout: number;
  userAgent?: string;
}

export type HttpsPostResult = { ok: true; status: number } | { ok: false; status: number | null; error: string };

/** What is read of an answer at most (the status decides; the body is only for the log). */
const MAX_ANSWER = 4096;

/**
 * POSTs a gzipped report to an `https:` rua (RFC 8460 §5.4) as `application/tlsrpt+gzip`. The certificate must be
 * valid for the URL's host (SNI sent, TLS 1.2 at least); redirects are not followed; 2xx means sent.
 */
export function postReport(url: string, gzip: Buffer, options: HttpsPostOptions): Promise<HttpsPostResult> {
  return new Promise<HttpsPostResult>((resolve) => {
    const target = new URL(url);
    let settled = false;
    const finish = (result: HttpsPostResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(result);
    };
    const host = target.hostname.replace(/^\[|\]$/g, '');
    const req = request({
      host,
      servername: host,
      port: target.port ? Number(target.port) : 443,
      path: `${target.pathname}${target.search}`,
      method: 'POST',
      headers: { 'content-type': 'application/tlsrpt+gzip', 'content-length': gzip.length, 'user-agent': options.userAgent ?? 'sealgate-tlsrpt' },
      lookup: options.lookup,
      ...(options.ca ? { ca: options.ca } : {}),
      minVersion: 'TLSv1.2',
      rejectUnauthorized: true,
      agent: false,
    });
    const timer = setTimeout(() => finish({ ok: false, status: null, error: `no answer within ${options.timeout} ms` }), options.timeout);
    req.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, status: null, error: `${err.code ? `${err.code} ` : ''}${err.message}` }));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_ANSWER) res.destroy();
      });
      const done = (): void => (status >= 200 && status < 300 ? finish({ ok: true, status }) : finish({ ok: false, status, error: `HTTP ${status}` }));
      res.on('end', done);
      res.on('close', done);
      res.on('error', done);
    });
    req.end(gzip);
  });
}
