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
  /** Send this many bytes of padding after the policy (oversized body). */
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
  close(): Promise<void>;
}

/** RFC 8461 §3.2 policy text with CRLF line ends. */
export function renderPolicy(policy: MtaStsPolicy): string {
  const lines = ['version: STSv1', `mode: ${policy.mode}`, ...policy.mx.map((mx) => `mx: ${mx}`), `max_age: ${policy.maxAge}`];
  return lines.join('\r\n') + '\r\n';
}

export async function startMtaStsServer(options: MtaStsServerOptions = {}): Promise<MtaStsServer> {
  void options;
  throw new Error('not implemented yet');
}
