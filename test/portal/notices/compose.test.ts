import { parseConfig } from '../../../src/config/load';
import { composeNotice, NOTICE_KINDS, type Notice } from '../../../src/portal/notices';

/** What notices say, and what they must never say (message content). */

const CANARY = 'CANARY-Zebra-7731';
const NOW = Date.UTC(2026, 10, 29, 12, 0, 0);
const EXPIRES = Date.UTC(2026, 11, 29, 12, 0, 0);
const LINK = 'https://portal.clinic.example/m/AbCdEf0123456789';

function config(portal: Record<string, unknown> = {}) {
  return parseConfig(
    {
      hostname: 'relay.clinic.example',
      listeners: [{ name: 'submission', port: 0, tls: 'starttls', auth: 'required' }],
      portal: { organisation: 'Riverside Clinic', publicUrl: 'https://portal.clinic.example', ...portal },
    },
    {},
    '/tmp',
  );
}

const notices: Record<Notice['kind'], Notice> = {
  'portal-link': { kind: 'portal-link', itemId: 'i1', to: 'patient@example.test', link: LINK, expiresAt: EXPIRES, originalSubject: `Lab results ${CANARY}` },
  'otp-code': { kind: 'otp-code', itemId: 'i1', to: 'patient@example.test', code: '482913', validForMs: 10 * 60_000 },
  'otp-locked': { kind: 'otp-locked', itemId: 'i1', to: 'patient@example.test', until: NOW + 15 * 60_000 },
  'expiry-reminder': { kind: 'expiry-reminder', itemId: 'i1', to: 'patient@example.test', link: LINK, expiresAt: EXPIRES },
  'recipient-not-told': {
    kind: 'recipient-not-told',
    itemId: 'i1',
    to: 'doctor@clinic.example',
    recipient: 'patient@example.test',
    queueId: 'Q123',
    reason: 'rcpt-550',
    messageId: '<m1@clinic.example>',
  },
  'unread-at-expiry': { kind: 'unread-at-expiry', to: 'doctor@clinic.example', recipients: ['patient@example.test', 'other@example.test'], queueId: 'Q123', messageId: '<m1@clinic.example>' },
};

describe('composeNotice', () => {
  it.each(NOTICE_KINDS)('%s: neutral subject, accessible HTML (lang, one h1, no images, no scripts), no tracking', (kind) => {
    const out = composeNotice(notices[kind], config(), NOW);
    expect(out.subject).toMatch(/^(Reminder: )?Secure message from Riverside Clinic/);
    expect(out.html).toMatch(/<html lang="en">/);
    expect(out.html.match(/<h1[\s>]/g)).toHaveLength(1);
    expect(out.html).not.toMatch(/<img|<script|<link|<style|url\(/i);
    expect(out.text.length).toBeGreaterThan(20);
    for (const part of [out.subject, out.text, out.html]) expect(part).not.toContain(CANARY);
  });

  it('the link notice: organisation, expiry date, the link (text and real link text), the host to check, never a password', () => {
    const out = composeNotice(notices['portal-link'], config(), NOW);
    expect(out.subject).toBe('Secure message from Riverside Clinic');
    for (const part of [out.text, out.html]) {
      expect(part).toContain('Riverside Clinic');
      expect(part).toContain('29 December 2026');
      expect(part).toContain('the link goes to portal.clinic.example');
      expect(part).toMatch(/never ask for your password/);
    }
    expect(out.text).toContain(LINK);
    expect(out.html).toContain(`<a href="${LINK}"`);
    expect(out.html).toMatch(/<a [^>]*>Open your secure message<\/a>/);
  });

  it('the original subject only when the admin flag is set and one is given', () => {
    expect(composeNotice(notices['portal-link'], config({ includeOriginalSubject: true }), NOW).subject).toBe(`Secure message from Riverside Clinic: Lab results ${CANARY}`);
    const { originalSubject: _, ...withoutSubject } = notices['portal-link'] as Extract<Notice, { kind: 'portal-link' }>;
    expect(composeNotice(withoutSubject, config({ includeOriginalSubject: true }), NOW).subject).toBe('Secure message from Riverside Clinic');
    expect(composeNotice(notices['portal-link'], config({ noticeSubject: '[{org}] secure mail' }), NOW).subject).toBe('[Riverside Clinic] secure mail');
  });

  it('a subject with line breaks cannot add headers', () => {
    const out = composeNotice({ ...notices['portal-link'], originalSubject: 'a\r\nBcc: x@evil.test' } as Notice, config({ includeOriginalSubject: true }), NOW);
    expect(out.subject).not.toMatch(/[\r\n]/);
  });

  it('the code notice gives the code and how long it is valid, nothing about the message', () => {
    const out = composeNotice(notices['otp-code'], config(), NOW);
    expect(out.text).toContain('482913');
    expect(out.text).toContain('10 minutes');
    expect(out.html).toContain('482913');
    expect(out.text).not.toContain('http');
    expect(out.text).not.toContain('patient@example.test');
  });

  it('the lockout notice says until when', () => {
    expect(composeNotice(notices['otp-locked'], config(), NOW).text).toContain('29 November 2026 at 12:15 UTC');
  });

  it('the sender notices name the queue id, the Message-ID and the recipients, nothing else', () => {
    const notTold = composeNotice(notices['recipient-not-told'], config(), NOW);
    expect(notTold.text).toContain('Q123');
    expect(notTold.text).toContain('<m1@clinic.example>');
    expect(notTold.html).toContain('&lt;m1@clinic.example&gt;');
    expect(notTold.text).toContain('patient@example.test');
    const unread = composeNotice(notices['unread-at-expiry'], config(), NOW);
    expect(unread.text).toContain('patient@example.test, other@example.test');
    expect(unread.text).toContain('Q123');
  });

  it('escapes what it puts into HTML', () => {
    const out = composeNotice(notices['portal-link'], config({ organisation: 'A & B <Clinic>' }), NOW);
    expect(out.html).toContain('A &amp; B &lt;Clinic&gt;');
    expect(out.html).not.toContain('<Clinic>');
  });

  it('without a public URL, the host to check is the link host', () => {
    const out = composeNotice({ ...notices['portal-link'], link: 'https://127.0.0.1:8443/m/x' } as Notice, config({ publicUrl: null }), NOW);
    expect(out.text).toContain('the link goes to 127.0.0.1:8443');
  });
});
