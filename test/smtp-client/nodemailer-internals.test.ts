import { readFileSync } from 'node:fs';
import path from 'node:path';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { ConnectionInternals } from '../../src/smtp-client/session';

/**
 * src/smtp-client/session.ts reads and patches nodemailer's SMTPConnection internals, which have no
 * public accessor: `_socket` (the TLS socket, to judge what was negotiated), `_ehloLines` (EHLO
 * keywords after TLS), `_actionEHLO` (wrapped to see whether the plaintext EHLO offered STARTTLS)
 * and `upgrading` (a failure during the STARTTLS handshake). They were checked against the version
 * below. When nodemailer changes, this test fails: re-check each internal in
 * node_modules/nodemailer (smtp-connection), adapt session.ts, then update PINNED.
 */
const PINNED = '10.6.1';

const installed = (JSON.parse(readFileSync(path.join(path.dirname(require.resolve('nodemailer/package.json')), 'package.json'), 'utf8')) as { version: string }).version;

function pinned(condition: boolean, what: string): void {
  if (!condition) {
    throw new Error(`nodemailer ${installed} (internals pinned at ${PINNED}): ${what}. src/smtp-client/session.ts relies on it; re-check the SMTPConnection internals and update PINNED.`);
  }
}

describe(`nodemailer SMTPConnection internals (pinned at ${PINNED})`, () => {
  it('the installed nodemailer is the pinned version', () => {
    pinned(installed === PINNED, `the installed version is not ${PINNED}`);
  });

  it('a new connection has the fields and methods session.ts uses', () => {
    const connection = new SMTPConnection({ host: '127.0.0.1', port: 25, logger: false });
    const internals = connection as unknown as ConnectionInternals & Record<string, unknown>;
    pinned('_socket' in internals, 'SMTPConnection has no _socket field');
    pinned(typeof internals._actionEHLO === 'function', 'SMTPConnection has no _actionEHLO method');
    const proto = SMTPConnection.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
    // The EHLO handler is looked up on the instance (so the wrapper sees the plaintext EHLO) and fills _ehloLines.
    pinned(/this\._responseActions\.push\(this\._actionEHLO\)/.test(String(proto._actionGreeting)), 'the greeting handler no longer queues this._actionEHLO');
    const methods = Object.getOwnPropertyNames(proto)
      .filter((name) => name !== 'constructor')
      .map((name) => String(proto[name]));
    pinned(
      methods.some((source) => /this\._ehloLines\s*=/.test(source)),
      'no SMTPConnection method sets _ehloLines any more',
    );
    // STARTTLS replaces _socket with the TLS socket and flags the handshake with `upgrading`.
    const upgrade = String(proto._upgradeConnection);
    pinned(/this\.upgrading\s*=\s*true/.test(upgrade), '_upgradeConnection no longer sets upgrading');
    pinned(/this\._socket\s*=\s*\S*tls\S*\.connect\(/.test(upgrade), '_upgradeConnection no longer puts the TLS socket in _socket');
  });
});
