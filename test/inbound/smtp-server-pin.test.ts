import { readFileSync } from 'node:fs';
import { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection';
import { SMTPStream } from 'smtp-server/lib/smtp-stream';
import { applySmtpServerAdaptations, PATCHED_INTERNALS, SMTP_SERVER_VERSION } from '../../src/inbound/smtp-server-adaptations';

/**
 * src/inbound/smtp-server-adaptations.ts replaces methods of smtp-server's SMTPConnection and reads
 * its private fields. Those are not API: any other smtp-server release must be re-checked by hand.
 */

const installed = (JSON.parse(readFileSync(require.resolve('smtp-server/package.json'), 'utf8')) as { version: string }).version;
const proto = SMTPConnection.prototype as unknown as Record<string, unknown>;
// Captured before the wrappers are applied (jest gives each test file its own module registry).
const originals = Object.fromEntries(PATCHED_INTERNALS.map((name) => [name, proto[name]]));

function pinned(condition: boolean, what: string): void {
  if (!condition) {
    throw new Error(
      `smtp-server-adaptations.ts was written for smtp-server ${SMTP_SERVER_VERSION} (installed: ${installed}): ${what}. ` +
        'Re-read the patched SMTPConnection internals in the new release, adapt the wrappers, then update SMTP_SERVER_VERSION.',
    );
  }
}

describe(`smtp-server internals patched by smtp-server-adaptations.ts (pinned to ${SMTP_SERVER_VERSION})`, () => {
  test('the installed smtp-server is the pinned version', () => {
    pinned(installed === SMTP_SERVER_VERSION, `node_modules/smtp-server/package.json says ${installed}`);
  });

  test.each(PATCHED_INTERNALS)('SMTPConnection.prototype.%s exists and is a method', (name) => {
    pinned(typeof originals[name] === 'function', `SMTPConnection.prototype.${name} is missing`);
  });

  test('the private state the wrappers read is still where they read it', () => {
    const source = SMTPConnection.toString();
    pinned(/this\._server\s*=\s*server/.test(source), 'the connection no longer keeps its server in this._server');
    pinned(/this\.session\s*=/.test(source), 'the connection no longer keeps this.session');
    pinned(/this\.secure\s*=/.test(source), 'the connection no longer keeps this.secure');
    const ehlo = String(originals.handler_EHLO);
    pinned(/this\._server\.options\.authMethods/.test(ehlo), 'handler_EHLO no longer reads this._server.options.authMethods (the AUTH-before-TLS wrapper swaps it)');
    const send = originals.send as (...args: unknown[]) => void;
    pinned(send.length === 3 && /^send\s*\(\s*code\s*,\s*data\s*,\s*context\s*\)/.test(String(send)), 'send(code, data, context) has a different signature');
    for (const name of ['handler_AUTH', 'handler_MAIL', 'handler_RCPT']) {
      pinned((originals[name] as (...args: unknown[]) => void).length === 2, `${name}(command, callback) has a different signature`);
    }
  });

  test('the command parser keeps the state the command-line deadline reads', () => {
    const createParser = String(originals._createParser);
    pinned(
      /new [\w.]*SMTPStream\(/.test(createParser) && /parser\.oncommand\s*=/.test(createParser) && /return parser/.test(createParser),
      '_createParser no longer builds an SMTPStream, sets its oncommand and returns it',
    );
    const stream = String(SMTPStream);
    pinned(/this\._remainder\s*=/.test(stream), 'SMTPStream no longer keeps a partial command line in _remainder');
    pinned(/this\._dataMode\s*=/.test(stream) && /this\.isClosed\s*=/.test(stream), 'SMTPStream no longer has _dataMode and isClosed');
    pinned(
      /_write\s*\(\s*chunk\s*,\s*encoding\s*,\s*next\s*\)/.test(stream) && /this\._write\(/.test(stream),
      'SMTPStream._write(chunk, encoding, next) changed, or no longer re-enters this._write for data mode',
    );
  });

  test('STARTTLS arms the idle timer on the TLS socket while the handshake runs', () => {
    const upgrade = String(proto.upgrade);
    pinned(/this\._upgrading\s*=\s*true[\s\S]*this\._armTimeout\(tlsSocket\)/.test(upgrade), 'upgrade() no longer calls this._armTimeout(tlsSocket) after setting _upgrading');
    pinned(/_armTimeout\s*\(\s*socket\s*=\s*this\._socket\s*\)/.test(String(originals._armTimeout)), '_armTimeout(socket = this._socket) has a different signature');
    pinned(/this\._socket\s*=\s*tlsSocket[\s\S]*this\._upgrading\s*=\s*false/.test(upgrade), 'upgrade() no longer swaps _socket and clears _upgrading once secure');
  });

  test('the server accepts through one connection listener and keeps handshaking sockets in _pendingSockets', () => {
    const server = new SMTPServer({ logger: false, secure: true });
    try {
      pinned(server.server.listenerCount('connection') === 1, 'the net.Server no longer has exactly one connection listener (guardAccept wraps it)');
      pinned(server._pendingSockets instanceof Map, 'SMTPServer no longer has a _pendingSockets map');
    } finally {
      server.server.close();
    }
    const source = String(SMTPServer);
    pinned(/this\._pendingSockets\.set\(socket,\s*secureSocket\)/.test(source), '_upgrade no longer maps the raw socket to its TLS socket in _pendingSockets');
    pinned(/this\._pendingSockets\.delete\(socket\)/.test(source), 'the pre-connect guard no longer removes a socket from _pendingSockets when the session starts');
    pinned(
      /options\.socketTimeout/.test(String(SMTPConnection)) || /socketTimeout\)\(this\._server\.options\)/.test(String(originals._armTimeout)),
      'the idle timeout is no longer read from options.socketTimeout when armed',
    );
  });

  test('applying the adaptations wraps every patched method, once', () => {
    applySmtpServerAdaptations();
    const wrapped = PATCHED_INTERNALS.map((name) => proto[name]);
    PATCHED_INTERNALS.forEach((name, i) => expect([name, wrapped[i] !== originals[name]]).toEqual([name, true]));
    applySmtpServerAdaptations();
    expect(PATCHED_INTERNALS.map((name) => proto[name])).toEqual(wrapped);
  });
});
