import { Readable } from 'node:stream';
import { outcomeRecord, type OutcomeRecord } from '../../src/evidence/recorder';
import type { ClaimedJob, HeaderFacts, JobResult, NewMessage } from '../../src/store/types';

/**
 * What the store-designs bench writes per message: the shapes the relay hands its store for one submission with one
 * recipient (data-pipeline.ts enqueue), and for one delivered result of it (engine.ts evidence, scheduler.ts result).
 * Synthetic but full-sized: addresses, client and TLS facts, a delivered result's evidence as engine.ts builds it.
 */

/** A message body of `size` bytes: 76-character CRLF lines after a small header block, as a 10 KB mail looks. */
export function messageBody(size: number, seed = 0): Buffer {
  const header = `From: Sender <sender@example.org>\r\nTo: <rcpt${seed}@dest${seed % 4}.example>\r\nSubject: reminder ${seed}\r\nMessage-ID: <${seed}.bench@example.org>\r\nDate: Mon, 30 Nov 2026 12:00:00 +0000\r\n\r\n`;
  const line = `${'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ'.repeat(2).slice(0, 76)}\r\n`;
  const out = Buffer.alloc(Math.max(size, header.length + 2));
  let at = out.write(header, 'latin1');
  while (at < out.length) at += out.write(line, at, 'latin1');
  out.write('\r\n', out.length - 2, 'latin1');
  return out;
}

/** The body as the relay's store sees it: a stream, in 64 KiB chunks (a socket's reads are smaller still). */
export function bodyStream(body: Buffer): Readable {
  const chunk = 64 * 1024;
  let at = 0;
  return new Readable({
    read() {
      if (at >= body.length) {
        this.push(null);
        return;
      }
      this.push(body.subarray(at, at + chunk));
      at += chunk;
    },
  });
}

export function newMessage(index: number, now = Date.now()): { message: NewMessage; headers: HeaderFacts } {
  return {
    message: {
      from: 'sender@example.org',
      recipients: [{ address: `rcpt${index}@dest${index % 4}.example` }],
      params: { bodyType: '8BITMIME' },
      client: { ip: '127.0.0.1', helo: 'client.example.org', user: 'app', listener: 'submission', tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' } },
      receivedAt: now,
    },
    headers: { messageId: `<${index}.bench@example.org>`, from: 'Sender <sender@example.org>', date: 'Mon, 30 Nov 2026 12:00:00 +0000' },
  };
}

/** A delivered result for every recipient of a claimed job, with the evidence fields engine.ts records. */
export function deliveredResult(claimed: ClaimedJob, now = Date.now()): JobResult {
  const tls = { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', group: 'x25519' };
  const certificate = { subject: `CN=mx.${claimed.job.domain}`, issuer: 'CN=Bench CA', validFrom: '2026-01-01T00:00:00.000Z', validTo: '2027-01-01T00:00:00.000Z', trusted: true, nameMatch: true };
  return {
    recipients: claimed.job.recipients.map((r) => ({
      address: r.address,
      outcome: 'delivered' as const,
      evidence: {
        at: now,
        outcome: 'delivered' as const,
        reason: 'delivered',
        mx: `mx.${claimed.job.domain}`,
        ip: '127.0.0.2',
        tls,
        certificate,
        policy: { source: 'default', mode: null, id: null, level: 'verify' },
        reply: '250 2.0.0 Ok: queued as 4ABCDEF',
        mxAttempts: [{ mx: `mx.${claimed.job.domain}`, ip: '127.0.0.2', at: now, class: 'ok', code: 'delivered', reason: 'delivered', starttls: true, tls, certificate, reply: '250 2.0.0 Ok' }],
        startedAt: now - 20,
      },
    })),
  };
}

/** The evidence records the relay appends for a result (EvidenceRecorder.recordOutcomes). */
export function outcomeRecords(claimed: ClaimedJob, result: JobResult): OutcomeRecord[] {
  return result.recipients.map((r) => outcomeRecord(claimed.message, r));
}
