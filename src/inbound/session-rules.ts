import type { RecipientInput } from '../store/types';
import { hasSourceRoute, MAIL_PARAMETERS, normalizeAddress, RCPT_PARAMETERS, unknownParameter } from './address';
import { safeForReply, type Refusal } from './replies';

/**
 * The MAIL FROM and RCPT TO rules, as pure functions of what is known about the session and what
 * the client sent: TLS before MAIL, AUTH where required, known parameters only, normalised
 * addresses, the user's sender domains, never an open relay, and the recipient domain cap.
 * The caller logs and counts a refusal and turns it into the reply.
 */

type Parameters = Record<string, string | true> | false | undefined;

export interface MailFacts {
  /** The listener requires TLS before MAIL (`requireTls`). */
  requireTls: boolean;
  /** The session runs over TLS (STARTTLS done or implicit TLS). */
  secure: boolean;
  /** The listener requires AUTH (`auth: required`). */
  authRequired: boolean;
  /** The authenticated user, if any. */
  user?: { allowedSenderDomains?: readonly string[] } | undefined;
}

export interface MailInput {
  address: string;
  args: Parameters;
}

export type MailDecision = { ok: true; sender: string } | { ok: false; refusal: Refusal };

export function checkMailFrom(facts: MailFacts, input: MailInput): MailDecision {
  const refuse = (reason: string, code: number, text: string): MailDecision => ({ ok: false, refusal: { reason, code, text } });
  if (facts.requireTls && !facts.secure) return refuse('tls-required', 530, '5.7.0 Must issue a STARTTLS command first');
  if (facts.authRequired && !facts.user) return refuse('auth-required', 530, '5.7.0 Authentication required');
  const unknown = unknownParameter(input.args, MAIL_PARAMETERS);
  if (unknown) return refuse('unknown-parameter', 555, `5.5.4 Unsupported MAIL parameter ${safeForReply(unknown)}`);
  const sender = normalizeAddress(input.address, 'sender');
  if (!sender.ok) return refuse(`sender-${sender.problem}`, 553, `5.1.7 ${sender.message}`);
  if (facts.user?.allowedSenderDomains && !facts.user.allowedSenderDomains.includes(sender.domain)) {
    return refuse('sender-domain-not-allowed', 553, '5.7.1 Sender address not allowed for this user');
  }
  return { ok: true, sender: sender.address };
}

/** MAIL is refused while the spool's disk is below limits.minFreeDisk (checked after checkMailFrom accepts). */
export const DISK_LOW: Refusal = { reason: 'disk-low', code: 452, text: '4.3.1 Insufficient system storage, try again later' };

export interface RcptFacts {
  /** The client authenticated. */
  authenticated: boolean;
  /** The client address is in one of the listener's trusted networks. */
  trusted: boolean;
  /** Recipient domains of the transaction so far. */
  domains: ReadonlySet<string>;
  /** limits.maxRecipientDomains */
  maxRecipientDomains: number;
}

export interface RcptInput {
  address: string;
  args: Parameters;
  dsn?: { notify?: string[] | undefined; orcpt?: string | undefined } | undefined;
}

export type RcptDecision = { ok: true; recipient: RecipientInput; domain: string } | { ok: false; refusal: Refusal };

export function checkRcptTo(facts: RcptFacts, input: RcptInput): RcptDecision {
  const refuse = (reason: string, code: number, text: string): RcptDecision => ({ ok: false, refusal: { reason, code, text } });
  const unknown = unknownParameter(input.args, RCPT_PARAMETERS);
  if (unknown) return refuse('unknown-parameter', 555, `5.5.4 Unsupported RCPT parameter ${safeForReply(unknown)}`);
  const recipient = normalizeAddress(input.address, 'recipient');
  if (!recipient.ok) return refuse(`recipient-${recipient.problem}`, 553, `5.1.3 ${recipient.message}`);
  // Never an open relay: only an authenticated client or one from a trusted network may relay.
  if (!facts.authenticated && !facts.trusted) return refuse('relay-denied-untrusted-unauthenticated', 554, '5.7.1 Relay access denied');
  if (!facts.domains.has(recipient.domain) && facts.domains.size >= facts.maxRecipientDomains) {
    return refuse('too-many-domains', 452, '4.5.3 Too many recipient domains');
  }
  const result: RecipientInput = { address: recipient.address };
  if (input.dsn?.notify) result.notify = input.dsn.notify;
  if (input.dsn?.orcpt) result.orcpt = input.dsn.orcpt;
  return { ok: true, recipient: result, domain: recipient.domain };
}

/** MAIL or RCPT with a source route in the raw command line (smtp-server strips it before the address reaches checkMailFrom/checkRcptTo). */
export function sourceRouteRefusal(commandLine: string): Refusal | null {
  return hasSourceRoute(commandLine) ? { reason: 'source-route', code: 553, text: '5.1.3 Source routes are not accepted' } : null;
}

/**
 * RFC 8689: REQUIRETLS is only offered after STARTTLS (smtp-server leaves it out of a plaintext EHLO), so a
 * plaintext `MAIL FROM:<…> REQUIRETLS` is refused. 530 is RFC 3207's "Must issue a STARTTLS command first"
 * and 5.7.10 "Encryption needed" (RFC 5248) says why; not 555 5.5.4 ("parameter not recognized"), which
 * invites a retry without the parameter and so without the sender's requirement. Read from the raw line,
 * before smtp-server's own check (530 with a made-up 5.7.0 text), so every listener gives this reply.
 */
export const REQUIRETLS_WITHOUT_TLS: Refusal = { reason: 'requiretls-without-tls', code: 530, text: '5.7.10 REQUIRETLS needs a TLS session: issue STARTTLS first' };

export function requireTlsParameterRefusal(commandLine: string, secure: boolean): Refusal | null {
  if (secure) return null;
  return mailParameterNames(commandLine).includes('REQUIRETLS') ? REQUIRETLS_WITHOUT_TLS : null;
}

/** The parameter keywords of a raw `MAIL FROM:<path> params` line, upper-cased; [] for any other line. */
export function mailParameterNames(commandLine: string): string[] {
  const head = /^\s*MAIL\s+FROM\s*:\s*/i.exec(commandLine);
  if (!head) return [];
  let rest = commandLine.slice(head[0].length);
  if (rest.startsWith('<')) {
    // The path ends at the first `>` outside a quoted local part (a quoted part may hold `>`, a parameter value too).
    let quoted = false;
    let end = 1;
    for (; end < rest.length; end++) {
      const c = rest[end];
      if (quoted && c === '\\') end++;
      else if (c === '"') quoted = !quoted;
      else if (c === '>' && !quoted) break;
    }
    rest = rest.slice(end + 1);
  } else {
    rest = rest.replace(/^\S*/, '');
  }
  return rest
    .trim()
    .split(/\s+/)
    .filter((p) => p !== '')
    .map((p) => p.split('=')[0]!.toUpperCase());
}
