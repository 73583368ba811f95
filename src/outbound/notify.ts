import type { MessageRecord, RecipientRecord } from '../store/types';

/*
 * Which DSN a recipient is due, per its RFC 3461 NOTIFY parameter. Pure decisions: bounces.ts queues the DSNs,
 * the engine asks these at each attempt.
 */

export type NotifyKeyword = 'NEVER' | 'SUCCESS' | 'FAILURE' | 'DELAY';

/** RFC 3461 §4.1: a recipient without NOTIFY is treated as NOTIFY=FAILURE,DELAY. */
export const DEFAULT_NOTIFY: readonly NotifyKeyword[] = ['FAILURE', 'DELAY'];

/** The recipient's NOTIFY keywords, upper-cased; the RFC default when the client gave none. */
export function notifyOf(recipient: Pick<RecipientRecord, 'notify'>): ReadonlySet<string> {
  if (!recipient.notify || recipient.notify.length === 0) return new Set(DEFAULT_NOTIFY);
  return new Set(recipient.notify.map((n) => n.trim().toUpperCase()));
}

/** A failure DSN unless NOTIFY=NEVER or a list without FAILURE. */
export function wantsFailureNotice(recipient: Pick<RecipientRecord, 'notify'>): boolean {
  const notify = notifyOf(recipient);
  return !notify.has('NEVER') && notify.has('FAILURE');
}

/** A delay warning unless NOTIFY=NEVER or a list without DELAY (the default includes DELAY). */
export function wantsDelayNotice(recipient: Pick<RecipientRecord, 'notify'>): boolean {
  const notify = notifyOf(recipient);
  return !notify.has('NEVER') && notify.has('DELAY');
}

/** A success DSN only when asked for explicitly: SUCCESS is never part of the default. */
export function wantsSuccessNotice(recipient: Pick<RecipientRecord, 'notify'>): boolean {
  return notifyOf(recipient).has('SUCCESS');
}

/**
 * Messages that never get a DSN at all: from the null sender (RFC 3461 §6.2), a portal notice (the portal tells the
 * sender), or the relay's own compliant-only mail (its sender is the relay itself: a bounce is an error in its log).
 */
export function dsnSuppressedFor(message: Pick<MessageRecord, 'from' | 'params'>): 'null-sender' | 'portal-notice' | 'relay-mail' | null {
  if (message.params.compliantOnly) return 'relay-mail';
  if (message.params.notice) return 'portal-notice';
  if (message.from === '') return 'null-sender';
  return null;
}

/** When the delay warning is due for a message (epoch ms), or null when warnings are off (`delivery.delayWarning` null or 0). */
export function delayWarningAt(receivedAt: number, delayWarning: number | null): number | null {
  return delayWarning ? receivedAt + delayWarning : null;
}

/**
 * Whether a recipient left deferred by this attempt gets its delay warning now: warnings are on, the threshold
 * has passed, none was sent before (the flag is stored with the recipient), the message may have DSNs at all
 * and the recipient's NOTIFY includes DELAY.
 */
export function delayWarningDue(
  message: Pick<MessageRecord, 'from' | 'params' | 'receivedAt'>,
  recipient: Pick<RecipientRecord, 'notify' | 'delayWarnedAt'>,
  delayWarning: number | null,
  now: number,
): boolean {
  const at = delayWarningAt(message.receivedAt, delayWarning);
  if (at === null || now < at) return false;
  if (recipient.delayWarnedAt !== undefined) return false;
  return dsnSuppressedFor(message) === null && wantsDelayNotice(recipient);
}

/**
 * When a deferred job should be tried again so that a warning still owed is not late by a whole retry step:
 * the earlier of the scheduled retry and the warning time, for a job with a recipient that will be owed one.
 * A warning is only sent at an attempt (it says "still being retried"), so the attempt is brought forward.
 */
export function retryAtForWarning(
  retryAt: number,
  message: Pick<MessageRecord, 'from' | 'params' | 'receivedAt'>,
  stillPending: ReadonlyArray<Pick<RecipientRecord, 'notify' | 'delayWarnedAt'>>,
  delayWarning: number | null,
  now: number,
): number {
  const at = delayWarningAt(message.receivedAt, delayWarning);
  // Past the threshold, this attempt already sent what was owed (delayWarningDue).
  if (at === null || at <= now || at >= retryAt) return retryAt;
  const owed = stillPending.some((r) => r.delayWarnedAt === undefined && wantsDelayNotice(r));
  return owed && dsnSuppressedFor(message) === null ? at : retryAt;
}

/**
 * Whether Sealgate owes a NOTIFY=SUCCESS recipient a `relayed` DSN after the next hop accepted it. None is due when
 * the next hop advertised DSN and was handed the recipient's NOTIFY: it reports from then on (RFC 3461 §4.1).
 * Otherwise Sealgate handed the message on to a hop that will not report, which RFC 3464 calls `relayed`.
 */
export function relayedNoticeDue(recipient: Pick<RecipientRecord, 'notify'>, nextHopHasDsn: boolean, notifyPassedOn: boolean): boolean {
  if (!wantsSuccessNotice(recipient)) return false;
  return !(nextHopHasDsn && notifyPassedOn);
}

/** Whether an EHLO keyword list (as the SMTP client keeps it) advertises DSN. */
export function advertisesDsn(ehlo: readonly string[]): boolean {
  return ehlo.some((line) => /^DSN(\s|$)/i.test(line.trim()));
}

/** The RFC 3463 status of a deferral: the reply's enhanced code when it has a 4.x.x one, else 4.0.0. */
export function deferralStatus(reply: string | null | undefined): string {
  const match = /^\d{3}[ -]([45])\.(\d{1,3})\.(\d{1,3})\b/.exec(reply?.trim() ?? '');
  if (match && match[1] === '4') return `4.${match[2]}.${match[3]}`;
  return '4.0.0';
}

/** The RFC 3463 status of an accepted recipient: the reply's enhanced 2.x.x code, else 2.0.0. */
export function successStatus(reply: string | null | undefined): string {
  const match = /^\d{3}[ -](2)\.(\d{1,3})\.(\d{1,3})\b/.exec(reply?.trim() ?? '');
  return match ? `2.${match[2]}.${match[3]}` : '2.0.0';
}
