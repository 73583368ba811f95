import { SMTPConnection } from 'smtp-server/lib/smtp-connection';
import type { SMTPServerSession } from 'smtp-server';

/**
 * Three small wrappers around smtp-server 3.21.6 internals, for behaviour it has no option for
 * (wrapping SMTPConnection handlers is the only way to change EHLO or reply codes). A test pins
 * SMTP_SERVER_VERSION and the internals in PATCHED_INTERNALS, so an upgrade fails loudly:
 *
 * 1. A reply text that starts with its own enhanced status code ("5.3.4 ...") is sent with that
 *    code instead of the one smtp-server derives from the reply number (it maps 552 to 5.2.2,
 *    452 to 4.2.2 and so on). Error replies smtp-server makes up itself (syntax errors, bad
 *    sequence, unknown commands) are reported to a server-level hook, so they are logged and
 *    counted against limits.maxBadCommands like Sealgate's own refusals.
 * 2. AUTH is neither advertised nor accepted before TLS: EHLO leaves it out and AUTH before TLS gets
 *    `530 5.7.0 Must issue a STARTTLS command first` (RFC 3207) instead of smtp-server's 538.
 * 3. MAIL and RCPT pass the raw command line to a server-level inspector first, because
 *    smtp-server strips a source route before the application sees the address.
 *
 * Applied once per process; every SMTPServer in it gets them.
 */

/** The smtp-server release these wrappers were written and checked against. */
export const SMTP_SERVER_VERSION = '3.21.6';

/** SMTPConnection.prototype methods replaced here; the wrappers also read `_server.options`, `session` and `secure`. */
export const PATCHED_INTERNALS = ['send', 'handler_EHLO', 'handler_AUTH', 'handler_MAIL', 'handler_RCPT'] as const;

export type RawCommandInspector = (command: 'MAIL' | 'RCPT', line: string, session: SMTPServerSession) => { code: number; message: string } | undefined;

/** Told about an error reply smtp-server sent on its own; returns true to close the session with 421. */
export type ProtocolErrorHook = (code: number, text: string, session: SMTPServerSession) => boolean;

/** Per-server hooks, set on the SMTPServer's options object. */
export interface AdaptedServerOptions {
  sealgateInspectCommand?: RawCommandInspector;
  sealgateOnProtocolError?: ProtocolErrorHook;
}

const ENHANCED_CODE_PREFIX = /^[245]\.\d{1,3}\.\d{1,3} /;
const APPLIED = Symbol.for('sealgate.smtp-server-adaptations');

type Handler = (this: SMTPConnection, command: Buffer, callback: () => void) => void;

interface ConnectionInternals {
  _server: { options: AdaptedServerOptions & { authMethods: string[] } };
}

export function applySmtpServerAdaptations(): void {
  const proto = SMTPConnection.prototype as SMTPConnection & Record<symbol, boolean>;
  if (proto[APPLIED]) return;
  proto[APPLIED] = true;

  // The library's own methods are kept and always called with .call(this), so `this` stays bound.
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const send = proto.send;
  proto.send = function (this: SMTPConnection, code: number, data?: string | string[] | null, context?: string | false): void {
    if (typeof data === 'string' && ENHANCED_CODE_PREFIX.test(data)) {
      // The text already carries the enhanced code (Sealgate keeps ENHANCEDSTATUSCODES on).
      send.call(this, code, data, false);
      return;
    }
    send.call(this, code, data, context);
    if (code < 400) return;
    const text = Array.isArray(data) ? data.join(' ') : String(data ?? '');
    // smtp-server's own 421 for too many unrecognized or unauthenticated commands closes the session:
    // counted as well, so a junk flood it cuts off is still a strike against the address.
    if (code === 421 && !/too many/i.test(text)) return;
    const hook = (this as unknown as ConnectionInternals)._server.options.sealgateOnProtocolError;
    if (hook && this.session?.id && hook(code, text, this.session) && code !== 421) {
      send.call(this, 421, '4.7.0 Too many errors, closing connection', false);
    }
  };

  // eslint-disable-next-line @typescript-eslint/unbound-method -- called with .call(this) below
  const ehlo: Handler = proto.handler_EHLO;
  proto.handler_EHLO = function (this: SMTPConnection, command: Buffer, callback: () => void): void {
    const options = (this as unknown as ConnectionInternals)._server.options;
    if (this.secure) {
      ehlo.call(this, command, callback);
      return;
    }
    // handler_EHLO reads authMethods synchronously, so the swap is invisible to other sessions.
    const methods = options.authMethods;
    options.authMethods = [];
    try {
      ehlo.call(this, command, callback);
    } finally {
      options.authMethods = methods;
    }
  };

  // eslint-disable-next-line @typescript-eslint/unbound-method -- called with .call(this) below
  const auth: Handler = proto.handler_AUTH;
  proto.handler_AUTH = function (this: SMTPConnection, command: Buffer, callback: () => void): void {
    if (!this.secure) {
      this.send(530, '5.7.0 Must issue a STARTTLS command first');
      callback();
      return;
    }
    auth.call(this, command, callback);
  };

  for (const name of ['MAIL', 'RCPT'] as const) {
    const key = name === 'MAIL' ? 'handler_MAIL' : 'handler_RCPT';
    const original = (proto as unknown as Record<string, Handler>)[key]!;
    (proto as unknown as Record<string, Handler>)[key] = function (this: SMTPConnection, command: Buffer, callback: () => void): void {
      const inspect = (this as unknown as ConnectionInternals)._server.options.sealgateInspectCommand;
      const refusal = inspect?.(name, command.toString('utf8'), this.session);
      if (refusal) {
        this.send(refusal.code, refusal.message);
        callback();
        return;
      }
      original.call(this, command, callback);
    };
  }
}
