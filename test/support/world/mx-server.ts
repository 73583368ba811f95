/**
 * SMTP servers standing for MX hosts in the test world, each with a chosen TLS behaviour and
 * reply behaviour. Every accepted message is recorded with its envelope, raw bytes and TLS facts.
 */

/** The TLS a test MX offers . */
export type MxTlsBehaviour =
  | 'tls13' // TLS 1.3 only, valid EC P-256 certificate from the test CA
  | 'tls12-gcm' // TLS 1.2 only, ECDHE-ECDSA AES-GCM suites only
  | 'tls11' // TLS 1.1 only (@SECLEVEL=0)
  | 'none' // no STARTTLS advertised
  | 'chacha20' // TLS 1.3 TLS_CHACHA20_POLY1305_SHA256 or TLS 1.2 ECDHE-ECDSA-CHACHA20-POLY1305 only
  | 'self-signed' // TLS 1.2/1.3, self-signed certificate for the right name
  | 'wrong-name' // TLS 1.2/1.3, test-CA certificate for another name
  | 'expired' // TLS 1.2/1.3, expired test-CA certificate for the right name
  | 'weak-rsa' // TLS 1.2/1.3, RSA 1024-bit test-CA certificate for the right name
  | 'tls12-13'; // TLS 1.2 and 1.3 with Node defaults, valid certificate (a "normal" modern MX)

/** Reply behaviour (all optional; default: accept everything). */
export interface MxReplyBehaviour {
  /** Recipients (case-insensitive addresses) answered `450 4.2.1` at RCPT. */
  rcpt4xx?: string[];
  /** Recipients answered `550 5.1.1` at RCPT. */
  rcpt5xx?: string[];
  /** The first delivery attempt of each message (by Message-ID, else body hash) gets `451 4.3.0` after DATA; later attempts are accepted. */
  tempFailOnce?: boolean;
  /** Wait this long before the final reply to DATA (crash tests). */
  dataDelayMs?: number;
}

export interface MxBehaviour extends MxReplyBehaviour {
  tls: MxTlsBehaviour;
}

/** What the MX saw of the TLS session, from the server side. */
export interface MxTlsFacts {
  protocol: string | null;
  /** IANA / RFC name, e.g. TLS_AES_128_GCM_SHA256 or TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256. */
  cipher: string;
  /** OpenSSL name, e.g. ECDHE-ECDSA-AES128-GCM-SHA256. */
  cipherOpenssl: string;
  /** SNI the client sent (null when none). */
  servername: string | null;
}

export interface ReceivedMessage {
  /** The MX host name this server stands for. */
  mx: string;
  mailFrom: string;
  rcptTo: string[];
  raw: Buffer;
  tls: MxTlsFacts | null;
  remoteAddress: string;
  at: Date;
}

/** Something that happened on a connection that did not end in an accepted message. */
export interface MxEvent {
  kind: 'connect' | 'tls' | 'tls-error' | 'rcpt-rejected' | 'data-tempfail';
  detail: string;
  at: Date;
}

export interface MxServerOptions extends MxBehaviour {
  /** The MX host name (EHLO greeting name, certificate name). */
  name: string;
  /** Loopback address to listen on. */
  host: string;
  /** Port (0 = runtime choice). */
  port: number;
}

export interface MxServer {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly behaviour: MxBehaviour;
  /** Accepted messages, oldest first. */
  readonly received: ReceivedMessage[];
  /** Connections, TLS handshakes (and failures), refusals, oldest first. */
  readonly events: MxEvent[];
  /** Resolve with the first received message (already there or arriving) matching `predicate`; reject after timeoutMs. */
  waitFor(predicate?: (message: ReceivedMessage) => boolean, timeoutMs?: number): Promise<ReceivedMessage>;
  /** Change reply behaviour at runtime (TLS behaviour is fixed at start). */
  setReplies(replies: MxReplyBehaviour): void;
  close(): Promise<void>;
}

export async function startMxServer(options: MxServerOptions): Promise<MxServer> {
  void options;
  throw new Error('not implemented yet');
}
