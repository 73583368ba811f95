import type http from 'node:http';
import { testCa } from './ca';
import { listenHttps } from './https-server';

/**
 * HTTPS endpoint for `https:` TLS-RPT destinations (RFC 8460 §5.4) in the test world: one host name with a
 * test-CA certificate, every POST kept (path, content type, body bytes), answers settable at runtime.
 */

export interface TlsRptPost {
  path: string;
  contentType: string | null;
  body: Buffer;
  /** SNI the client sent. */
  servername: string | null;
  at: Date;
}

export interface TlsRptEndpoint {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** The https URL of a path on this endpoint (with the runtime port). */
  url(path: string): string;
  readonly posts: TlsRptPost[];
  /** Status of the answers from now on (default 200). */
  setStatus(status: number): void;
  /** Resolves with the first POST matching `predicate` (already there or arriving); rejects after timeoutMs. */
  waitFor(predicate?: (post: TlsRptPost) => boolean, timeoutMs?: number): Promise<TlsRptPost>;
  clear(): void;
  close(): Promise<void>;
}

/** Largest body kept; a report of the test world is a few hundred bytes. */
const MAX_BODY = 1024 * 1024;

export async function startTlsRptEndpoint(options: { name: string; host: string; port?: number }): Promise<TlsRptEndpoint> {
  const { name, host } = options;
  const { key, cert } = await (await testCa()).leaf('valid', name);
  const posts: TlsRptPost[] = [];
  const waiters = new Set<{ predicate: (post: TlsRptPost) => boolean; resolve: (post: TlsRptPost) => void }>();
  let status = 200;

  const handle = (request: http.IncomingMessage, response: http.ServerResponse): void => {
    if (request.method !== 'POST') {
      response.writeHead(405).end();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY) chunks.push(chunk);
    });
    request.on('end', () => {
      const servername = (request.socket as import('node:tls').TLSSocket).servername;
      const post: TlsRptPost = {
        path: request.url ?? '',
        contentType: request.headers['content-type'] ?? null,
        body: Buffer.concat(chunks),
        servername: typeof servername === 'string' ? servername : null,
        at: new Date(),
      };
      posts.push(post);
      for (const waiter of [...waiters]) {
        if (waiter.predicate(post)) {
          waiters.delete(waiter);
          waiter.resolve(post);
        }
      }
      response.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'thanks\n' : 'no\n');
    });
  };

  const listening = await listenHttps({ key, cert }, handle, { host, port: options.port });
  const { port } = listening;

  return {
    name,
    host,
    port,
    url: (path) => `https://${name}:${port}${path.startsWith('/') ? path : `/${path}`}`,
    posts,
    setStatus(next) {
      status = next;
    },
    waitFor(predicate = () => true, timeoutMs = 10_000) {
      const already = posts.find(predicate);
      if (already) return Promise.resolve(already);
      return new Promise<TlsRptPost>((resolve, reject) => {
        const waiter = {
          predicate,
          resolve: (post: TlsRptPost) => {
            clearTimeout(timer);
            resolve(post);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no TLS-RPT POST to ${name} matched within ${timeoutMs} ms (${posts.length} received)`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    clear: () => void posts.splice(0, posts.length),
    close: () => listening.close(),
  };
}
