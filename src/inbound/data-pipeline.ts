import type { SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import type { Config } from '../config/schema';
import type { Logger } from '../log/logger';
import type { HeaderFacts, NewMessage, RecipientInput, Store } from '../store/types';
import { extractHeaderFacts } from './header-facts';
import { GuardError, MessageGuard } from './message-guard';
import { parsePortalChoices, PortalHeaderFilter, storedPortalChoices } from './portal-headers';
import type { Refusal } from './replies';

/**
 * DATA: the client's bytes stream through the MessageGuard (size, line length, bare CR/LF, NUL,
 * header size, Received: count) and the PortalHeaderFilter (removes X-Sealgate-Portal-* fields, whose choices land in
 * params.portal) into the store. The caller answers `250` only once this resolves with a queue id, that is
 * once the store holds the message durably; guard problems become `552`/`550`/`554`, a store failure or
 * a vanished client `451`.
 */

const DATA_RATE_CHECK_MS = 1_000;

export type DataOutcome = { queueId: string; size: number } | { refusal: Refusal; size: number };

export interface DataTransfer {
  stream: SMTPServerDataStream;
  store: Pick<Store, 'enqueue'>;
  limits: Pick<Config['limits'], 'maxMessageSize' | 'maxLineLength' | 'maxHeaderSize' | 'maxReceivedHeaders' | 'dataGrace' | 'minDataRate'>;
  message: NewMessage;
  /** The Received header Sealgate prepends. */
  received: Buffer;
  log: Logger;
  /** The client has sent its final dot: from now on the session waits for the store. */
  onComplete(): void;
  /** True once onComplete has been called (the data-rate watch stops then). */
  complete(): boolean;
  /** The client sends slower than limits.minDataRate after limits.dataGrace (the caller drops the session). */
  onTooSlow(rate: number): void;
}

export async function receiveMessage(transfer: DataTransfer): Promise<DataOutcome> {
  const { stream, store, limits, message } = transfer;
  const guard = new MessageGuard(limits, transfer.received);
  guard.on('error', () => undefined); // reported through headerReady()/enqueue and guard.problem
  let clientAborted = false;
  // The client may vanish mid-DATA: smtp-server then destroys the stream; the store must see an error.
  stream.on('error', (err) => {
    clientAborted = true;
    guard.destroy(err);
  });
  stream.pipe(guard);
  // Every accepted submission comes from an authenticated user or a trusted network, so its portal
  // choices apply; the fields are always removed, even when the portal is off.
  const filter = new PortalHeaderFilter();
  filter.on('error', () => undefined); // reported through headerReady()/enqueue
  guard.once('error', (err) => filter.destroy(err));
  guard.pipe(filter);
  // After a guard failure keep reading (and discarding) the client's data so the reply can follow its final dot.
  guard.once('error', () => {
    stream.unpipe(guard);
    stream.resume();
  });
  stream.once('end', () => transfer.onComplete());
  const rateTimer = watchDataRate(transfer, message.receivedAt);

  try {
    const headers = await headerFacts(filter);
    const portal = await storedPortalChoices(parsePortalChoices(filter.fields, transfer.log));
    const stored: NewMessage = portal ? { ...message, params: { ...message.params, portal } } : message;
    const record = await store.enqueue(stored, filter, headers);
    return { queueId: record.id, size: guard.bytes };
  } catch (err) {
    const refusal = dataFailure(guard.problem ?? (err instanceof GuardError ? err : undefined), clientAborted);
    if (refusal.reason === 'store-failed') transfer.log.error({ event: 'store-failed', err: (err as Error).message, errName: (err as Error).name }, 'could not store a message');
    // The store may have stopped reading mid-message: drain the rest so the reply can follow the final dot.
    stream.unpipe(guard);
    guard.destroy();
    filter.destroy();
    stream.resume();
    return { refusal, size: guard.bytes };
  } finally {
    clearInterval(rateTimer);
  }
}

/** Maps why DATA failed to a reply: guard problems are permanent, everything else (the store) temporary. */
export function dataFailure(problem: GuardError | undefined, clientAborted: boolean): Refusal {
  if (problem) {
    switch (problem.problem) {
      case 'too-big':
        return { reason: 'message-too-big', code: 552, text: `5.3.4 ${problem.message}` };
      case 'header-too-big':
        return { reason: 'header-too-big', code: 552, text: `5.3.4 ${problem.message}` };
      case 'line-too-long':
        return { reason: 'line-too-long', code: 552, text: `5.3.4 ${problem.message}` };
      case 'bare-newline':
        return { reason: 'bare-newline', code: 550, text: '5.6.0 Message contains bare CR or LF line endings (RFC 5321 2.3.8)' };
      case 'nul-byte':
        return { reason: 'nul-byte', code: 550, text: '5.6.0 Message contains NUL bytes' };
      case 'too-many-hops':
        return { reason: 'too-many-hops', code: 554, text: '5.4.6 Too many hops' };
    }
  }
  if (clientAborted) return { reason: 'client-aborted', code: 451, text: '4.3.0 Message not received in full' };
  return { reason: 'store-failed', code: 451, text: '4.3.0 Temporary failure storing the message, try again later' };
}

/** The facts of the header block as stored (the portal fields already removed). */
async function headerFacts(filter: PortalHeaderFilter): Promise<HeaderFacts> {
  const block = await filter.headerReady();
  try {
    return await extractHeaderFacts(block);
  } catch {
    // Unparseable headers are the recipient's problem, not a reason to refuse; keep no facts.
    return {};
  }
}

/** smtp-server's socketTimeout counts idle time only, so a trickling client is cut off here. */
function watchDataRate(transfer: DataTransfer, startedAt: number): NodeJS.Timeout {
  const { dataGrace, minDataRate } = transfer.limits;
  const timer = setInterval(() => {
    if (transfer.complete() || minDataRate === 0) return;
    const elapsed = Date.now() - startedAt;
    if (elapsed <= dataGrace) return;
    const rate = (transfer.stream.byteLength || 0) / (elapsed / 1000);
    if (rate >= minDataRate) return;
    clearInterval(timer);
    transfer.onTooSlow(rate);
  }, DATA_RATE_CHECK_MS);
  timer.unref();
  return timer;
}

/** What the session knows about the transaction besides smtp-server's envelope. */
export interface TransactionFacts {
  ip: string;
  listener: string;
  sender: string;
  recipients: Iterable<RecipientInput>;
  user?: string | undefined;
  tls?: { protocol: string; cipher: string } | undefined;
  receivedAt: number;
}

/** The message record the store gets: envelope, MAIL parameters that matter downstream, client facts. */
export function newMessage(session: Pick<SMTPServerSession, 'envelope' | 'hostNameAppearsAs'>, facts: TransactionFacts): NewMessage {
  const envelope = session.envelope;
  const params: NewMessage['params'] = {};
  if (envelope.bodyType) params.bodyType = envelope.bodyType.toLowerCase() === '8bitmime' ? '8BITMIME' : '7BIT';
  if (envelope.smtpUtf8) params.smtpUtf8 = true;
  if (envelope.requireTLS) params.requireTls = true;
  const dsn = envelope.dsn;
  if (dsn && (dsn.ret || dsn.envid)) {
    params.dsn = {};
    if (dsn.ret === 'FULL' || dsn.ret === 'HDRS') params.dsn.ret = dsn.ret;
    if (dsn.envid) params.dsn.envid = dsn.envid;
  }
  const client: NewMessage['client'] = { ip: facts.ip, listener: facts.listener };
  if (session.hostNameAppearsAs) client.helo = session.hostNameAppearsAs;
  if (facts.user) client.user = facts.user;
  if (facts.tls) client.tls = facts.tls;
  return { from: facts.sender, recipients: [...facts.recipients], params, client, receivedAt: facts.receivedAt };
}
