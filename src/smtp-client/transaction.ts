import { PassThrough, type Readable } from 'node:stream';
import type { SMTPEnvelope } from 'nodemailer/lib/smtp-connection';
import type { RecipientReply, TransactionResult } from '../outcome';
import type { MxSession } from './session';

export type { RecipientReply, TransactionResult } from '../outcome';

export type SendError = Error & {
  code?: string;
  responseCode?: number;
  response?: string;
  command?: string;
  rejected?: string[];
  rejectedErrors?: Array<{ recipient?: string; responseCode?: number; response?: string }>;
};

export interface TransactionInput {
  from: string;
  recipients: string[];
  size: number;
  eightBit: boolean;
  requireTls: boolean;
  dsn?: SMTPEnvelope['dsn'];
  body: Readable;
}

/** One SMTP transaction (MAIL, RCPT..., DATA) on an open, judged session. Never throws. */
export function sendTransaction(session: Pick<MxSession, 'connection'>, input: TransactionInput): Promise<TransactionResult> {
  const counted = new PassThrough();
  let bodySent = false;
  counted.on('end', () => (bodySent = true));
  input.body.pipe(counted);

  const envelope: SMTPEnvelope = {
    from: input.from === '' ? false : input.from,
    to: input.recipients,
    size: input.size,
    use8BitMime: input.eightBit,
    ...(input.dsn ? { dsn: input.dsn } : {}),
    ...(input.requireTls ? { requireTLSExtensionEnabled: true } : {}),
  };

  return new Promise((resolve) => {
    let settled = false;
    // nodemailer reports a connection that dies mid-transaction as 'error'/'end' events, not always
    // through the send callback: listen for both so a transaction can never hang.
    const onGone = (err?: Error) => finish(Object.assign(err ?? new Error('connection closed'), { code: 'ECONNECTION' }));
    session.connection.once('end', onGone);
    session.connection.once('error', onGone);
    // A body that fails (unreadable, or damaged: see the store's body check) must never be completed with
    // "." on the wire: drop the connection mid-DATA so the MX discards what it got.
    input.body.on('error', (err) => {
      if (settled) return;
      counted.destroy(err);
      session.connection.close();
      onGone(Object.assign(new Error(`message body could not be read: ${err.message}`), { code: 'ECONNECTION' }));
    });
    const finish = (err: SendError | null, info?: Parameters<Parameters<typeof session.connection.send>[2]>[1]) => {
      if (settled) return;
      settled = true;
      session.connection.off('end', onGone);
      session.connection.off('error', onGone);
      input.body.destroy();
      if (!err && info) {
        const recipients = new Map<string, RecipientReply>();
        for (const address of info.accepted) recipients.set(address, { outcome: 'delivered', reply: info.response });
        for (const rejected of info.rejectedErrors ?? []) addRejected(recipients, rejected);
        resolve({ kind: 'answered', recipients });
        return;
      }
      resolve(classifySendError(err as SendError, bodySent));
    };
    session.connection.send(envelope, counted, (err, info) => finish(err, info));
  });
}

function addRejected(recipients: Map<string, RecipientReply>, rejected: { recipient?: string; responseCode?: number; response?: string }): void {
  if (!rejected.recipient) return;
  const code = rejected.responseCode ?? 0;
  recipients.set(rejected.recipient, { outcome: code >= 500 ? 'bounced' : 'deferred', reply: (rejected.response ?? `${code}`).trim() });
}

/** How a failed transaction ended: RCPT refusals per recipient, else one class and code for the whole transaction. */
export function classifySendError(err: SendError, bodySent: boolean): TransactionResult {
  const reply = err.response ? err.response.trim() : null;
  const code = err.responseCode ?? 0;
  if (err.code === 'EENVELOPE' && err.rejectedErrors && err.rejectedErrors.length > 0) {
    const recipients = new Map<string, RecipientReply>();
    for (const rejected of err.rejectedErrors) addRejected(recipients, rejected);
    return { kind: 'answered', recipients };
  }
  if (err.code === 'EREQUIRETLS') {
    return { kind: 'failed', classification: 'non-compliant', code: 'requiretls-not-supported', reply, reason: 'the MX does not offer REQUIRETLS, which the message requires', bodySent: false };
  }
  if (code >= 500) {
    return {
      kind: 'failed',
      classification: 'permanent',
      code: `${(err.command ?? 'smtp').toLowerCase().replace(/\s+/g, '-')}-${code}`,
      reply,
      reason: `${err.command ?? 'SMTP'} refused: ${reply ?? code}`,
      bodySent,
    };
  }
  if (code >= 400) {
    return {
      kind: 'failed',
      classification: 'transient',
      code: `${(err.command ?? 'smtp').toLowerCase().replace(/\s+/g, '-')}-${code}`,
      reply,
      reason: `${err.command ?? 'SMTP'} deferred: ${reply ?? code}`,
      bodySent,
    };
  }
  return { kind: 'failed', classification: 'transient', code: 'connection-lost', reply, reason: `connection failed during the transaction: ${err.message}`, bodySent };
}

/** RSET so the connection can carry the next message; false when it cannot be reused. */
export function resetSession(session: Pick<MxSession, 'connection'>): Promise<boolean> {
  return new Promise((resolve) => {
    if (session.connection.destroyed) {
      resolve(false);
      return;
    }
    session.connection.reset((err) => resolve(!err));
  });
}
