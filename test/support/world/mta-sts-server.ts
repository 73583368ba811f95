import type http from 'node:http';
import tls from 'node:tls';
import { testCa } from './ca';
import { listenHttps } from './https-server';

/**
 * HTTPS server for `https://mta-sts.<domain>/.well-known/mta-sts.txt` (RFC 8461) in the test world,
 * one listener for all domains, certificates picked by SNI, responses changeable at runtime.
 */

export interface MtaStsPolicy {
  mode: 'enforce' | 'testing' | 'none';
  mx: string[];
  maxAge: number;
}

/** How the server answers for one policy domain. Unset fields: 200, text/plain, the policy text. */
export interface MtaStsResponse {
  /** The policy (rendered with CRLF line ends) ... */
  policy?: MtaStsPolicy;
  /** ... or a raw body (wins over `policy`). */
  body?: string | Buffer;
  status?: number;
  /** Answer 301 with this Location. */
  redirect?: string;
  /** Content-Type header (default 'text/plain'). */
  contentType?: string;
  /** Append about this many bytes of `x-padding:` lines (unknown keys, so only a size limit rejects it). */
  oversizeBytes?: number;
  /** Delay before sending headers (timeouts). */
  delayMs?: number;
  /** Certificate served for `mta-sts.<domain>` (default 'valid'). */
  certificate?: 'valid' | 'wrong-name' | 'expired' | 'self-signed';
}

export interface MtaStsRequest {
  /** Policy domain derived from the SNI / Host (without `mta-sts.`). */
  domain: string;
  servername: string | null;
  host: string | null;
  path: string;
  at: Date;
}

export interface MtaStsServerOptions {
  /** Loopback address to listen on (default 127.0.0.1). */
  host?: string;
  /** Port (default 0). */
  port?: number;
}

export interface MtaStsServer {
  readonly host: string;
  readonly port: number;
  readonly requests: MtaStsRequest[];
  /** Serve `response` for `domain` (the policy domain, not the mta-sts. name). */
  set(domain: string, response: MtaStsResponse): void;
  /** Stop serving `domain` (404). */
  remove(domain: string): void;
  requestsFor(domain: string): MtaStsRequest[];
  clearLog(): void;
  close(): Promise<void>;
}

/** RFC 8461 §3.2 policy text with CRLF line ends. */
export function renderPolicy(policy: MtaStsPolicy): string {
  const lines = ['version: STSv1', `mode: ${policy.mode}`, ...policy.mx.map((mx) => `mx: ${mx}`), `max_age: ${policy.maxAge}`];
  return lines.join('\r\n') + '\r\n';
}

export async function startMtaStsServer(options: MtaStsServerOptions = {}): Promise<MtaStsServer> {
  const host = options.host ?? '127.0.0.1';
  const ca = await testCa();
  const responses = new Map<string, MtaStsResponse>();
  const requests: MtaStsRequest[] = [];
  const contexts = new Map<string, Promise<tls.SecureContext>>();
  const timers = new Set<NodeJS.Timeout>();

  const contextFor = (servername: string): Promise<tls.SecureContext> => {
    const kind = responses.get(policyDomainOf(servername))?.certificate ?? 'valid';
    const cacheKey = `${kind}|${servername}`;
    let pending = contexts.get(cacheKey);
    if (!pending) {
      pending = ca.leaf(kind, servername).then(({ key, cert }) => tls.createSecureContext({ key, cert }));
      contexts.set(cacheKey, pending);
    }
    return pending;
  };

  const handle = (request: http.IncomingMessage, response: http.ServerResponse): void => {
    const servername = (request.socket as tls.TLSSocket).servername;
    const hostHeader = request.headers.host ?? null;
    const domain = policyDomainOf(typeof servername === 'string' && servername ? servername : (hostHeader ?? '').replace(/:\d+$/, ''));
    const path = request.url ?? '';
    requests.push({ domain, servername: typeof servername === 'string' ? servername : null, host: hostHeader, path, at: new Date() });

    const configured = responses.get(domain);
    if (!configured || path !== '/.well-known/mta-sts.txt') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    const send = (): void => {
      if (configured.redirect) {
        response.writeHead(configured.status ?? 301, { location: configured.redirect }).end();
        return;
      }
      const body = bodyOf(configured);
      response.writeHead(configured.status ?? 200, {
        'content-type': configured.contentType ?? 'text/plain',
        'content-length': body.length,
      });
      response.end(body);
    };
    const delay = configured.delayMs ?? 0;
    if (delay <= 0) return send();
    const timer = setTimeout(() => {
      timers.delete(timer);
      send();
    }, delay);
    timers.add(timer);
  };

  const listening = await listenHttps(
    {
      SNICallback: (servername, callback) => {
        contextFor(servername.toLowerCase()).then(
          (context) => callback(null, context),
          (error: Error) => callback(error),
        );
      },
    },
    handle,
    { host, port: options.port },
  );

  return {
    host,
    port: listening.port,
    requests,
    set(domain, response) {
      responses.set(normalize(domain), { ...response });
    },
    remove(domain) {
      responses.delete(normalize(domain));
    },
    requestsFor: (domain) => requests.filter((request) => request.domain === normalize(domain)),
    clearLog: () => void requests.splice(0, requests.length),
    close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      return listening.close();
    },
  };
}

function normalize(name: string): string {
  return name.toLowerCase().replace(/\.+$/, '');
}

/** `mta-sts.example.test` → `example.test`. */
function policyDomainOf(name: string): string {
  return normalize(name).replace(/^mta-sts\./, '');
}

function bodyOf(response: MtaStsResponse): Buffer {
  let text = response.body !== undefined ? Buffer.from(response.body) : Buffer.from(response.policy ? renderPolicy(response.policy) : '');
  const padding = response.oversizeBytes ?? 0;
  if (padding > 0) {
    const line = `x-padding: ${'x'.repeat(1000)}\r\n`;
    text = Buffer.concat([text, Buffer.from(line.repeat(Math.ceil(padding / line.length)))]);
  }
  return text;
}
