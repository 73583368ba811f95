import { readFileSync } from 'node:fs';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection';
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

  test('applying the adaptations wraps every patched method, once', () => {
    applySmtpServerAdaptations();
    const wrapped = PATCHED_INTERNALS.map((name) => proto[name]);
    PATCHED_INTERNALS.forEach((name, i) => expect([name, wrapped[i] !== originals[name]]).toEqual([name, true]));
    applySmtpServerAdaptations();
    expect(PATCHED_INTERNALS.map((name) => proto[name])).toEqual(wrapped);
  });
});
