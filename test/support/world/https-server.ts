import https from 'node:https';
import type http from 'node:http';

/** A listening HTTPS server of the test world. */
export interface ListeningHttps {
  server: https.Server;
  host: string;
  /** The port it got (options.port 0: a free one). */
  port: number;
  /** Stops listening and drops open connections; safe to call twice. */
  close(): Promise<void>;
}

/**
 * An HTTPS server on `host:port` (default port 0) that ignores failed handshakes (tests provoke them on purpose),
 * resolved once it listens.
 */
export async function listenHttps(
  tlsOptions: https.ServerOptions,
  handler: (request: http.IncomingMessage, response: http.ServerResponse) => void,
  listen: { host: string; port?: number | undefined },
): Promise<ListeningHttps> {
  const server = https.createServer(tlsOptions, handler);
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port ?? 0, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  let closing: Promise<void> | undefined;
  return {
    server,
    host: listen.host,
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
