import type { Socket } from 'node:net';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection';
import type { SMTPServerSession } from 'smtp-server';

/**
 * Small wrappers around smtp-server 3.21.6 internals, for behaviour it has no option for
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
 *    smtp-server strips a source route before the application sees the address, and refuses a
 *    plaintext REQUIRETLS itself (with a made-up 5.7.0) before onMailFrom runs. REQUIRETLS in EHLO
 *    is smtp-server's own: offered only when `secure` and `hideREQUIRETLS` is false.
 *    (test/inbound/requiretls.test.ts pins both with this version.)
 * 4. A command-line deadline: once the first byte of a command line has reached the command parser,
 *    the whole line must follow within `sealgateCommandTimeout` ms, else `421 4.4.2` and close
 *    (smtp-server's socketTimeout only counts idle time, so a byte every few seconds kept a session
 *    open for ever). The parser of each connection (a new one after STARTTLS) is instrumented: its
 *    `_write` sees the bytes arrive and its `_remainder` holds a partial line. The first byte of a
 *    command line is reported to `sealgateOnCommandStart` (the first-command deadline is then met).
 * 5. A STARTTLS handshake deadline: `upgrade()` arms the idle timer on the new TLS socket through
 *    `_armTimeout(tlsSocket)`; that call also starts a `sealgateHandshakeTimeout` timer that
 *    destroys the TLS socket if it is not secure in time.
 *
 * Applied once per process; every SMTPServer in it gets them.
 */

/** The smtp-server release these wrappers were written and checked against. */
export const SMTP_SERVER_VERSION = '3.21.6';

/** SMTPConnection.prototype methods replaced here; the wrappers also read `_server.options`, `session` and `secure`. */
export const PATCHED_INTERNALS = ['send', 'handler_EHLO', 'handler_AUTH', 'handler_MAIL', 'handler_RCPT', '_createParser', '_armTimeout'] as const;

export type RawCommandInspector = (command: 'MAIL' | 'RCPT', line: string, session: SMTPServerSession) => { code: number; message: string } | undefined;

/** Told about an error reply smtp-server sent on its own; returns true to close the session with 421. */
export type ProtocolErrorHook = (code: number, text: string, session: SMTPServerSession) => boolean;

/** Per-server hooks, set on the SMTPServer's options object. */
export interface AdaptedServerOptions {
  sealgateInspectCommand?: RawCommandInspector;
  sealgateOnProtocolError?: ProtocolErrorHook;
  /** Most time a whole command line may take from its first byte, in ms (0: no limit). */
  sealgateCommandTimeout?: number;
  /** Most time the TLS handshake after STARTTLS may take, in ms (0: only the idle timer). */
  sealgateHandshakeTimeout?: number;
  /** The first byte of a command line arrived. */
  sealgateOnCommandStart?: (session: SMTPServerSession) => void;
  /** A deadline of this file closed the connection. */
  sealgateOnTimeout?: (reason: 'command-timeout' | 'handshake-timeout', session: SMTPServerSession, remoteAddress: string) => void;
}

/** The reply sent when a command line took longer than sealgateCommandTimeout. */
export const COMMAND_TIMEOUT_REPLY = '4.4.2 Command timeout, closing connection';

const ENHANCED_CODE_PREFIX = /^[245]\.\d{1,3}\.\d{1,3} /;
const APPLIED = Symbol.for('sealgate.smtp-server-adaptations');

type Handler = (this: SMTPConnection, command: Buffer, callback: () => void) => void;

interface ConnectionInternals {
  _server: { options: AdaptedServerOptions & { authMethods: string[] } };
  _socket: Socket;
  _upgrading: boolean;
  _closing: boolean;
  _closed: boolean;
  remoteAddress: string;
}

/** The parts of smtp-server's SMTPStream (the command parser) the command deadline reads. */
interface ParserInternals {
  isClosed: boolean;
  _dataMode: boolean;
  _remainder: string;
  _write(chunk: Buffer, encoding: string, next: (err?: Error | null) => void): void;
  oncommand(command: Buffer, callback?: () => void): void;
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
    // smtp-server's own 421 for too many unrecognized or unauthenticated commands ("Error: too many …";
    // Sealgate's own replies start with an enhanced code) closes the session: counted as well, so a junk
    // flood it cuts off is still a strike against the address.
    if (code === 421 && !/^Error: too many /i.test(text)) return;
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

  const createParser = (proto as unknown as { _createParser: (this: SMTPConnection) => ParserInternals })._createParser;
  (proto as unknown as { _createParser: (this: SMTPConnection) => ParserInternals })._createParser = function (this: SMTPConnection): ParserInternals {
    const parser = createParser.call(this);
    instrumentParser(this, parser);
    return parser;
  };

  const armTimeout = (proto as unknown as { _armTimeout: (this: SMTPConnection, socket?: Socket) => void })._armTimeout;
  (proto as unknown as { _armTimeout: (this: SMTPConnection, socket?: Socket) => void })._armTimeout = function (this: SMTPConnection, socket?: Socket): void {
    armTimeout.call(this, socket);
    const connection = this as unknown as ConnectionInternals & SMTPConnection;
    // Only upgrade() arms a socket other than the current one, while the handshake runs on it.
    if (!socket || socket === connection._socket || !connection._upgrading) return;
    startHandshakeDeadline(connection, socket);
  };
}

function instrumentParser(connection: ConnectionInternals & SMTPConnection, parser: ParserInternals): void {
  let timer: NodeJS.Timeout | undefined;
  const stop = (): void => {
    clearTimeout(timer);
    timer = undefined;
  };
  const start = (): void => {
    const options = connection._server.options;
    if (timer) return;
    options.sealgateOnCommandStart?.(connection.session);
    const ms = options.sealgateCommandTimeout;
    if (!ms) return;
    timer = setTimeout(() => {
      timer = undefined;
      if (parser.isClosed || connection._closing || connection._closed || connection._upgrading) return;
      options.sealgateOnTimeout?.('command-timeout', connection.session, connection.remoteAddress);
      connection.send(421, COMMAND_TIMEOUT_REPLY);
    }, ms);
    timer.unref();
  };
  // The parser's own methods, called with .call(parser).
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const write = parser._write;
  parser._write = function (chunk, encoding, next): void {
    if (!parser._dataMode && !parser.isClosed && chunk.length > 0) start();
    write.call(parser, chunk, encoding, (err) => {
      // Every whole line has been handed on: what is left is a partial line, or nothing.
      if (parser.isClosed || parser._dataMode || parser._remainder === '') stop();
      else start();
      next(err);
    });
  };
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const oncommand = parser.oncommand;
  parser.oncommand = function (command, callback): void {
    stop();
    oncommand.call(parser, command, callback);
  };
}

function startHandshakeDeadline(connection: ConnectionInternals & SMTPConnection, socket: Socket): void {
  const options = connection._server.options;
  const ms = options.sealgateHandshakeTimeout;
  if (!ms) return;
  const timer = setTimeout(() => {
    if (!connection._upgrading || socket.destroyed) return;
    options.sealgateOnTimeout?.('handshake-timeout', connection.session, connection.remoteAddress);
    // Destroyed from the top (the TLS socket), as smtp-server's own handshake timeout does.
    socket.destroy(Object.assign(new Error('TLS handshake timeout'), { code: 'ERR_TLS_HANDSHAKE_TIMEOUT' }));
  }, ms);
  timer.unref();
  const clear = (): void => clearTimeout(timer);
  socket.once('secure', clear);
  socket.once('close', clear);
}
