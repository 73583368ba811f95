import type { Store } from '../../src/store/types';
import { RawSmtpClient, type SmtpReply } from './smtp-client';

/**
 * Load and bookkeeping for crash tests: SMTP submitters that keep sending through restarts and
 * outages, recording exactly what the relay acknowledged, and a reconciliation of those
 * acknowledgements against the store, the test-world MX hosts and the relay's logs.
 */

/** Seeded PRNG (mulberry32): a crash run replays with the same seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** A seed from CRASH_SEED when given (to replay a failure), else a fresh one. */
export function crashSeed(): number {
  const given = process.env.CRASH_SEED;
  if (given !== undefined && given !== '') {
    const seed = Number(given);
    if (!Number.isInteger(seed)) throw new Error(`CRASH_SEED must be an integer, got ${given}`);
    return seed;
  }
  return Math.floor(Math.random() * 2 ** 31);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until the store has no open job (queued, deferred, leased, held) or `maxMs` passed; returns how many are still open. */
export async function drainStore(store: Pick<Store, 'counts'>, maxMs: number): Promise<number> {
  const deadline = Date.now() + maxMs;
  for (;;) {
    const { jobs } = await store.counts();
    const open = jobs.queued + jobs.deferred + jobs.leased + jobs.held;
    if (open === 0 || Date.now() > deadline) return open;
    await sleep(250);
  }
}

/** How one submission ended, from the submitter's side. */
export type SubmissionResult =
  | 'acked' // 250 to the end of DATA, with a queue id
  | 'refused-4xx' // a 4xx to MAIL, every RCPT, DATA or the end of DATA
  | 'refused-5xx'
  | 'no-reply' // a command was not answered within the bound (a hang)
  | 'dropped'; // the connection closed or failed before the final reply

export interface Submission {
  seq: number;
  /** The Message-ID header, without angle brackets. */
  messageId: string;
  recipients: string[];
  result: SubmissionResult;
  /** Relay queue id from `250 ... queued as ID`. */
  queueId?: string;
  /** The reply that decided the result (code and text), or the error. */
  detail: string;
  /** When MAIL FROM was sent, and when the result was known (epoch ms). */
  startedAt: number;
  endedAt: number;
  /** The longest wait for one reply in this submission (ms). */
  longestReplyMs: number;
}

export interface LoadOptions {
  /** Tag in every Message-ID (keeps runs apart in one world). */
  tag: string;
  /** The smarthost port of the relay running now, undefined while it is down. */
  port: () => number | undefined;
  /** Recipients for message number `seq`, drawn with `random`. */
  recipients: (seq: number, random: () => number) => string[];
  random: () => number;
  connections: number;
  /** Messages sent on one connection before it is closed and another opened. */
  messagesPerConnection: number;
  /** Bound on each SMTP reply: a reply slower than this counts as `no-reply`. */
  replyTimeoutMs: number;
  /** Body size in bytes (approximately). */
  bodyBytes?: number;
}

/** Submitters sending over several connections until stop(); every submission is recorded. */
export class SmtpLoad {
  readonly submissions: Submission[] = [];
  private seq = 0;
  private stopping = false;
  private readonly workers: Promise<void>[] = [];
  /** Slowest reply seen (ms), to report how close the load came to its bound. */
  slowestReplyMs = 0;

  constructor(private readonly options: LoadOptions) {}

  start(): void {
    for (let i = 0; i < this.options.connections; i++) this.workers.push(this.worker());
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.workers);
  }

  acked(): Submission[] {
    return this.submissions.filter((s) => s.result === 'acked');
  }

  private async worker(): Promise<void> {
    while (!this.stopping) {
      const port = this.options.port();
      if (port === undefined) {
        await sleep(50);
        continue;
      }
      let client: RawSmtpClient | undefined;
      try {
        client = await this.timed(RawSmtpClient.connect(port, { timeoutMs: this.options.replyTimeoutMs }));
        await this.expect(client, 'EHLO load.sender.test', 250);
        const started = await client.startTls({ rejectUnauthorized: false });
        if (started.code !== 220) throw new Error(`STARTTLS answered ${started.code}`);
        await this.expect(client, 'EHLO load.sender.test', 250);
      } catch {
        client?.close();
        await sleep(50);
        continue;
      }
      for (let n = 0; n < this.options.messagesPerConnection && !this.stopping; n++) {
        const submission = await this.submit(client);
        this.submissions.push(submission);
        if (submission.result === 'dropped' || submission.result === 'no-reply' || client.closed) break;
        if (submission.result !== 'acked') {
          // A refused transaction may leave the server mid-transaction: start the next one clean.
          const reset = await this.reply(client, 'RSET').catch(() => undefined);
          if (!reset || reset.code !== 250) break;
        }
      }
      client.close();
    }
  }

  private async submit(client: RawSmtpClient): Promise<Submission> {
    const seq = this.seq++;
    const messageId = `crash-${this.options.tag}-${seq}@sender.test`;
    const recipients = this.options.recipients(seq, this.options.random);
    const startedAt = Date.now();
    const waits = { longest: 0 };
    const done = (result: SubmissionResult, detail: string, queueId?: string): Submission => ({
      seq,
      messageId,
      recipients,
      result,
      detail,
      startedAt,
      endedAt: Date.now(),
      longestReplyMs: waits.longest,
      ...(queueId ? { queueId } : {}),
    });
    let step = 'MAIL';
    const refused = (reply: SmtpReply, step: string): Submission => done(reply.code >= 500 ? 'refused-5xx' : 'refused-4xx', `${step}: ${reply.code} ${reply.text}`);
    try {
      const mail = await this.reply(client, 'MAIL FROM:<clinic@sender.test>', waits);
      if (mail.code !== 250) return refused(mail, 'MAIL');
      step = 'RCPT';
      let accepted = 0;
      let lastRefusal: SmtpReply | undefined;
      for (const rcpt of recipients) {
        const reply = await this.reply(client, `RCPT TO:<${rcpt}>`, waits);
        if (reply.code === 250) accepted++;
        else lastRefusal = reply;
      }
      if (accepted !== recipients.length) return refused(lastRefusal!, 'RCPT');
      step = 'DATA';
      const data = await this.reply(client, 'DATA', waits);
      if (data.code !== 354) return refused(data, 'DATA');
      step = 'end of DATA';
      client.write(this.body(messageId, recipients));
      const final = await this.timed(client.readReply(), waits);
      if (final.code !== 250) return refused(final, 'end of DATA');
      const queueId = /queued as (\S+)/.exec(final.text)?.[1];
      if (!queueId) throw new Error(`250 without a queue id: ${final.text}`);
      return done('acked', `250 ${final.text}`, queueId);
    } catch (error) {
      const message = (error as Error).message;
      return done(/no SMTP reply in time|load bound/.test(message) ? 'no-reply' : 'dropped', `${step}: ${message}`);
    }
  }

  private body(messageId: string, recipients: string[]): string {
    const line = 'Crash-loop filler: the relay must keep every acknowledged recipient.\r\n';
    const filler = line.repeat(Math.max(1, Math.ceil((this.options.bodyBytes ?? 2_000) / line.length)));
    return `From: clinic@sender.test\r\nTo: ${recipients.join(', ')}\r\nMessage-ID: <${messageId}>\r\n` + `Subject: crash loop ${messageId}\r\nDate: ${new Date().toUTCString()}\r\n\r\n${filler}.\r\n`;
  }

  private async reply(client: RawSmtpClient, line: string, waits?: { longest: number }): Promise<SmtpReply> {
    return this.timed(client.command(line), waits);
  }

  private async expect(client: RawSmtpClient, line: string, code: number): Promise<void> {
    const reply = await this.reply(client, line);
    if (reply.code !== code) throw new Error(`${line} answered ${reply.code}`);
  }

  /** Measures one wait and bounds it (the client's own timeout also applies). */
  private async timed<T>(work: Promise<T>, waits?: { longest: number }): Promise<T> {
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        work,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('load bound: no SMTP reply in time')), this.options.replyTimeoutMs + 1_000);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      this.slowestReplyMs = Math.max(this.slowestReplyMs, Date.now() - started);
      if (waits) waits.longest = Math.max(waits.longest, Date.now() - started);
    }
  }
}
