/** SMTP replies inbound sends as errors, and the text helpers for client-supplied values. */

/** A refused command or message: the reason code (logs, metrics) and the reply, e.g. 553 "5.1.7 Invalid domain". */
export interface Refusal {
  reason: string;
  code: number;
  /** The reply text, starting with the enhanced status code. */
  text: string;
}

/** An error smtp-server sends as the reply `responseCode text`. */
export interface SmtpReplyError extends Error {
  responseCode: number;
}

export function reply(code: number, text: string): SmtpReplyError {
  return Object.assign(new Error(text), { responseCode: code });
}

/** The 421 that replaces a refusal once a session has used up limits.maxBadCommands. */
export function tooManyErrors(text: string): SmtpReplyError {
  return reply(421, `4.7.0 Too many errors (${text.replace(/^\d\.\d+\.\d+ /, '')}), closing connection`);
}

/** Parameter names echoed in replies: printable ASCII only, bounded. */
export function safeForReply(value: string): string {
  return value.replace(/[^\x21-\x7e]/g, '?').slice(0, 64);
}

/** A client-supplied user name in a log line: bounded and without control characters. */
export function safeForLog(value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/[\x00-\x1f\x7f-\x9f]/g, '?').slice(0, 128);
}
