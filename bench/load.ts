import nodemailer from 'nodemailer';

/**
 * The load generator: C workers, each with one SMTP connection (STARTTLS, no AUTH: both relays
 * accept loopback clients as a trusted network), submitting their share of M messages of S bytes
 * one after another. Every message carries a unique Message-ID `<bench-RUN-INDEX@sender.test>`
 * so its arrival at a sink can be matched to its submission.
 */

export interface LoadOptions {
  host: string;
  port: number;
  /** Several listeners (relay processes) to spread the connections over, round-robin; default host:port. */
  endpoints?: Endpoint[];
  runId: string;
  messages: number;
  /** Approximate size of each message in bytes (headers + body). */
  size: number;
  connections: number;
  domains: string[];
  /** Paced load: messages per second over all connections (undefined: as fast as possible). */
  rate?: number;
  /** Submit without STARTTLS (only for the durability check, which reads the replies with strace). */
  plaintext?: boolean;
  /** Give up on the whole load after this long. */
  timeoutMs: number;
}

export interface Endpoint {
  host: string;
  port: number;
}

/** The listener connection `worker` (0-based) submits to: the endpoints taken in turn. */
export function endpointFor(endpoints: Endpoint[], worker: number): Endpoint {
  if (endpoints.length === 0) throw new Error('no endpoint to submit to');
  return endpoints[worker % endpoints.length]!;
}

export interface Submission {
  index: number;
  /** ms since the epoch (performance.timeOrigin + now) when sendMail started and when the 250 arrived. */
  startedAt: number;
  acceptedAt: number;
}

export interface LoadResult {
  submissions: Submission[];
  failures: Array<{ index: number; error: string }>;
  firstStart: number;
  lastAccepted: number;
}

export const SENDER = 'bench@sender.test';

export function now(): number {
  return performance.timeOrigin + performance.now();
}

/** A body of printable 76-character lines, shared by every message of a run. */
function bodyOf(size: number): Buffer {
  const line = 'The quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnopqrstu\r\n';
  const lines = Math.max(1, Math.ceil(Math.max(0, size - 400) / line.length));
  return Buffer.from(line.repeat(lines));
}

export function messageId(runId: string, index: number): string {
  return `<bench-${runId}-${index}@sender.test>`;
}

export function recipientOf(domains: string[], index: number): string {
  return `user${index}@${domains[index % domains.length]!}`;
}

export function buildMessage(runId: string, index: number, to: string, body: Buffer): Buffer {
  const header =
    `From: Bench <${SENDER}>\r\nTo: <${to}>\r\nSubject: benchmark message ${index}\r\n` +
    `Message-ID: ${messageId(runId, index)}\r\nDate: ${new Date().toUTCString()}\r\nMIME-Version: 1.0\r\n` +
    'Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n';
  return Buffer.concat([Buffer.from(header, 'latin1'), body]);
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const body = bodyOf(options.size);
  const submissions: Submission[] = [];
  const failures: LoadResult['failures'] = [];
  const deadline = Date.now() + options.timeoutMs;
  const firstStart = now();
  let next = 0;

  const endpoints = options.endpoints ?? [{ host: options.host, port: options.port }];
  const worker = async (workerIndex: number): Promise<void> => {
    const endpoint = endpointFor(endpoints, workerIndex);
    const transport = nodemailer.createTransport({
      host: endpoint.host,
      port: endpoint.port,
      secure: false,
      ...(options.plaintext ? { ignoreTLS: true } : { requireTLS: true }),
      tls: { rejectUnauthorized: false },
      pool: true,
      maxConnections: 1,
      maxMessages: Infinity,
      name: 'client.sender.test',
      socketTimeout: 120_000,
    });
    try {
      while (next < options.messages && Date.now() < deadline) {
        const index = next++;
        if (options.rate) {
          const due = firstStart + (index * 1000) / options.rate;
          const wait = due - now();
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        }
        const to = recipientOf(options.domains, index);
        const raw = buildMessage(options.runId, index, to, body);
        const startedAt = now();
        try {
          await transport.sendMail({ envelope: { from: SENDER, to: [to] }, raw });
          submissions.push({ index, startedAt, acceptedAt: now() });
        } catch (error) {
          failures.push({ index, error: (error as Error).message });
        }
      }
    } finally {
      transport.close();
    }
  };

  await Promise.all(Array.from({ length: options.connections }, (_, index) => worker(index)));
  const lastAccepted = submissions.reduce((max, s) => Math.max(max, s.acceptedAt), firstStart);
  return { submissions, failures, firstStart, lastAccepted };
}
