import { createHash } from 'node:crypto';
import type tls from 'node:tls';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { testCa, type LeafKind } from './ca';

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
  /** Recipients (case-insensitive addresses; '*' = all) answered `450 4.2.1` at RCPT. */
  rcpt4xx?: string[];
  /** Recipients (case-insensitive; '*' = all) answered `550 5.1.1` at RCPT. */
  rcpt5xx?: string[];
  /** The first delivery attempt of each message (by Message-ID, else body hash) gets `451 4.3.0` after DATA; later attempts are accepted. */
  tempFailOnce?: boolean;
  /** Wait this long before the final reply to DATA (crash tests). A client that hangs up meanwhile gets nothing recorded in `received` (event 'data-aborted'). */
  dataDelayMs?: number;
}

export interface MxBehaviour extends MxReplyBehaviour {
  tls: MxTlsBehaviour;
  /**
   * Send the issuing test-CA root after the leaf (ignored for `self-signed` and `none`). A DANE-TA
   * (usage 2) record names a trust anchor the server must send in its chain (RFC 7671 §5.2.2).
   */
  chain?: boolean;
  /** Advertise REQUIRETLS (RFC 8689) in EHLO after STARTTLS (smtp-server hides it by default). Fixed at start. */
  requireTls?: boolean;
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
  /** The MAIL FROM parameters as the client sent them (keyword upper-cased → value, or true for a bare keyword); always set by the server. */
  mailParams?: Record<string, string | true>;
  rcptTo: string[];
  raw: Buffer;
  tls: MxTlsFacts | null;
  remoteAddress: string;
  at: Date;
  /**
   * When this server answered DATA with 354: the client sends the content only after that, so a client that died
   * before this moment cannot have sent this copy, while one that died after it may have (its bytes were in flight).
   */
  dataStartedAt: Date;
}

/** Something that happened on a connection that did not end in an accepted message. */
export interface MxEvent {
  kind: 'connect' | 'tls' | 'tls-error' | 'rcpt-rejected' | 'data-tempfail' | 'data-delayed' | 'data-aborted';
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
  /** PEM of the leaf certificate this server presents (for TLSA records computed from it). */
  readonly certificate: string;
  /** PEM of the root it sends after the leaf (`chain: true`), else null. */
  readonly chainRoot: string | null;
  /** Accepted messages, oldest first. */
  readonly received: ReceivedMessage[];
  /** Connections, TLS handshakes (and failures), refusals, oldest first. */
  readonly events: MxEvent[];
  /** Resolve with the first received message (already there or arriving) matching `predicate`; reject after timeoutMs. */
  waitFor(predicate?: (message: ReceivedMessage) => boolean, timeoutMs?: number): Promise<ReceivedMessage>;
  /** Change reply behaviour at runtime (TLS behaviour is fixed at start). */
  setReplies(replies: MxReplyBehaviour): void;
  /** Forget received messages, events and which messages were already temp-failed once. */
  clear(): void;
  close(): Promise<void>;
}

export async function startMxServer(options: MxServerOptions): Promise<MxServer> {
  const { name, host } = options;
  let replies: MxReplyBehaviour = pickReplies(options);
  const received: ReceivedMessage[] = [];
  const events: MxEvent[] = [];
  const tlsBySession = new Map<string, MxTlsFacts>();
  const closedSessions = new Set<string>();
  const tempFailed = new Set<string>();
  const timers = new Set<NodeJS.Timeout>();
  const waiters = new Set<{ predicate: (m: ReceivedMessage) => boolean; resolve: (m: ReceivedMessage) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  const note = (kind: MxEvent['kind'], detail: string): void => void events.push({ kind, detail, at: new Date() });

  const record = (message: ReceivedMessage): void => {
    received.push(message);
    for (const waiter of waiters) {
      if (waiter.predicate(message)) {
        clearTimeout(waiter.timer);
        waiters.delete(waiter);
        waiter.resolve(message);
      }
    }
  };

  const tlsSetup = await tlsOptionsFor(options.tls, name, options.chain === true);
  const serverOptions: SMTPServerOptions = {
    ...tlsSetup.options,
    name,
    banner: `${name} test MX`,
    logger: false,
    authOptional: true,
    // Hiding STARTTLS is not enough: smtp-server still honours the command, and nodemailer with
    // requireTLS sends it even when not advertised. Disabling it makes `none` really plaintext-only.
    disabledCommands: options.tls === 'none' ? ['AUTH', 'STARTTLS'] : ['AUTH'],
    closeTimeout: 100,
    disableReverseLookup: true, // no lookups outside the test world's DNS (and no delay)
    hideREQUIRETLS: options.requireTls !== true,
    onConnect(session, callback) {
      note('connect', session.remoteAddress);
      callback();
    },
    onSecure(socket, session, callback) {
      const tlsSocket = socket as tls.TLSSocket;
      const cipher = tlsSocket.getCipher();
      const facts: MxTlsFacts = {
        protocol: tlsSocket.getProtocol(),
        cipher: cipher.standardName,
        cipherOpenssl: cipher.name,
        servername: typeof tlsSocket.servername === 'string' ? tlsSocket.servername : null,
      };
      tlsBySession.set(session.id, facts);
      note('tls', `${facts.protocol ?? '?'} ${facts.cipher} sni=${facts.servername ?? '-'}`);
      callback();
    },
    onClose(session) {
      closedSessions.add(session.id);
    },
    onRcptTo(address, _session, callback) {
      const recipient = address.address.toLowerCase();
      if (listed(replies.rcpt5xx, recipient)) {
        note('rcpt-rejected', `550 ${recipient}`);
        return callback(smtpError(550, '5.1.1 Recipient rejected by test MX'));
      }
      if (listed(replies.rcpt4xx, recipient)) {
        note('rcpt-rejected', `450 ${recipient}`);
        return callback(smtpError(450, '4.2.1 Recipient deferred by test MX'));
      }
      callback();
    },
    onData(stream, session, callback) {
      const dataStartedAt = new Date();
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks);
        const messageKey = messageKeyOf(raw);
        if (replies.tempFailOnce && !tempFailed.has(messageKey)) {
          tempFailed.add(messageKey);
          note('data-tempfail', messageKey);
          return callback(smtpError(451, '4.3.0 Temporary failure, try again (test MX)'));
        }
        const message: ReceivedMessage = {
          mx: name,
          mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          mailParams: session.envelope.mailFrom ? mailParamsOf(session.envelope.mailFrom.args) : {},
          rcptTo: session.envelope.rcptTo.map((rcpt) => rcpt.address),
          raw,
          tls: tlsBySession.get(session.id) ?? null,
          remoteAddress: session.remoteAddress,
          at: new Date(),
          dataStartedAt,
        };
        const accept = (): void => {
          if (closedSessions.has(session.id)) {
            note('data-aborted', messageKey);
            return;
          }
          record(message);
          callback(null, `2.0.0 Ok: queued by ${name}`);
        };
        const delay = replies.dataDelayMs ?? 0;
        if (delay <= 0) return accept();
        // The whole message is here and the client waits for our reply: the window a crash test aims at.
        note('data-delayed', messageKey);
        const timer = setTimeout(() => {
          timers.delete(timer);
          accept();
        }, delay);
        timers.add(timer);
      });
    },
  };

  const server = new SMTPServer(serverOptions);
  // Handshake failures and resets arrive here; without a listener they would crash the test process.
  server.on('error', (error: Error & { code?: string }) => note('tls-error', `${error.code ?? ''} ${error.message}`.trim()));

  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.server.once('error', onError);
    server.listen(options.port, host, () => {
      server.server.off('error', onError);
      resolve();
    });
  });
  const address = server.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;

  let closing: Promise<void> | undefined;
  return {
    name,
    host,
    port,
    get behaviour() {
      return { tls: options.tls, ...(options.chain ? { chain: true } : {}), ...(options.requireTls ? { requireTls: true } : {}), ...replies };
    },
    certificate: tlsSetup.leaf,
    chainRoot: tlsSetup.root,
    received,
    events,
    waitFor(predicate = () => true, timeoutMs = 10_000) {
      const found = received.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise<ReceivedMessage>((resolve, reject) => {
        const waiter = {
          predicate,
          resolve,
          reject,
          timer: setTimeout(() => {
            waiters.delete(waiter);
            reject(new Error(`${name}: no matching message within ${timeoutMs} ms (received ${received.length})`));
          }, timeoutMs),
        };
        waiters.add(waiter);
      });
    },
    setReplies(next) {
      replies = pickReplies(next);
    },
    clear() {
      received.splice(0, received.length);
      events.splice(0, events.length);
      tempFailed.clear();
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        for (const waiter of waiters) {
          clearTimeout(waiter.timer);
          waiter.reject(new Error(`${name}: server closed`));
        }
        waiters.clear();
        server.close(() => resolve());
      });
      return closing;
    },
  };
}

function pickReplies(source: MxReplyBehaviour): MxReplyBehaviour {
  const { rcpt4xx, rcpt5xx, tempFailOnce, dataDelayMs } = source;
  return {
    ...(rcpt4xx ? { rcpt4xx: rcpt4xx.map((a) => a.toLowerCase()) } : {}),
    ...(rcpt5xx ? { rcpt5xx: rcpt5xx.map((a) => a.toLowerCase()) } : {}),
    ...(tempFailOnce ? { tempFailOnce } : {}),
    ...(dataDelayMs ? { dataDelayMs } : {}),
  };
}

function mailParamsOf(args: Record<string, string | boolean> | false | undefined): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  for (const [key, value] of Object.entries(args || {})) if (value !== false) out[key.toUpperCase()] = value;
  return out;
}

function listed(list: string[] | undefined, recipient: string): boolean {
  return list !== undefined && (list.includes('*') || list.includes(recipient));
}

function smtpError(responseCode: number, text: string): Error & { responseCode: number } {
  return Object.assign(new Error(text), { responseCode });
}

/** Identity of a message across delivery attempts: its Message-ID, else a hash of the bytes. */
function messageKeyOf(raw: Buffer): string {
  const headerEnd = raw.indexOf('\r\n\r\n');
  const headers = raw.subarray(0, headerEnd < 0 ? raw.length : headerEnd).toString('latin1');
  const match = /^message-id:\s*(.+(?:\r\n[ \t].*)*)/im.exec(headers);
  return match?.[1] ? match[1].replace(/\s+/g, '') : createHash('sha256').update(raw).digest('hex');
}

/** Which test-CA leaf each TLS behaviour presents. */
const LEAF_KIND: Record<MxTlsBehaviour, LeafKind> = {
  tls13: 'valid',
  'tls12-gcm': 'valid',
  tls11: 'valid',
  none: 'valid',
  chacha20: 'valid',
  'self-signed': 'self-signed',
  'wrong-name': 'wrong-name',
  expired: 'expired',
  'weak-rsa': 'weak-rsa',
  'tls12-13': 'valid',
};

interface MxTlsSetup {
  options: Partial<SMTPServerOptions>;
  /** The leaf PEM presented. */
  leaf: string;
  /** The root PEM sent after it (`chain`), else null. */
  root: string | null;
}

/** Protocol versions, suites and certificate (chain) for each TLS behaviour. */
async function tlsOptionsFor(behaviour: MxTlsBehaviour, name: string, chain: boolean): Promise<MxTlsSetup> {
  const ca = await testCa();
  const { key, cert: leaf } = await ca.leaf(LEAF_KIND[behaviour], name);
  const root = chain && behaviour !== 'none' ? ca.rootOf(LEAF_KIND[behaviour]) : null;
  const cert = root ? `${leaf.trim()}\n${root}` : leaf;
  const base = { key, cert, minVersion: 'TLSv1.2' as const, maxVersion: 'TLSv1.3' as const };
  const setup = (options: Partial<SMTPServerOptions>): MxTlsSetup => ({ options, leaf, root });
  switch (behaviour) {
    case 'tls13':
      return setup({ ...base, minVersion: 'TLSv1.3' });
    case 'tls12-gcm':
      return setup({ ...base, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384' });
    case 'tls11':
      // OpenSSL 3 refuses TLS 1.1 at the default security level.
      return setup({ ...base, minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:@SECLEVEL=0' });
    case 'none':
      return setup({ ...base, hideSTARTTLS: true });
    case 'chacha20':
      // TLS 1.3 names in `ciphers` restrict the TLS 1.3 suites; the rest restricts TLS 1.2.
      return setup({ ...base, ciphers: 'TLS_CHACHA20_POLY1305_SHA256:ECDHE-ECDSA-CHACHA20-POLY1305' });
    case 'weak-rsa':
      return setup({ ...base, ciphers: 'DEFAULT:@SECLEVEL=0' });
    default:
      return setup(base);
  }
}
