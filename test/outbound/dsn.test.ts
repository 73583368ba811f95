import { simpleParser } from 'mailparser';
import { buildDsn } from '../../src/outbound/dsn';

const originalHeaders = Buffer.from('From: clinic@sender.test\r\nTo: patient@bounce.test\r\nSubject: Lab results\r\nMessage-ID: <m1@sender.test>\r\n\r\n');

describe('DSN (RFC 3464)', () => {
  test('is a multipart/report with a human part, a delivery-status part and the original headers only', async () => {
    const raw = await buildDsn({
      reportingMta: 'relay.test',
      originalSender: 'clinic@sender.test',
      queueId: 'Q123',
      arrivalAt: Date.UTC(2026, 10, 27, 10),
      envid: 'ENV-1',
      recipients: [
        {
          address: 'patient@bounce.test',
          orcpt: 'rfc822;patient@bounce.test',
          action: 'failed',
          status: '5.1.1',
          remoteMta: 'mx.bounce.test',
          diagnostic: '550 5.1.1 no such user',
          lastAttemptAt: Date.UTC(2026, 10, 27, 10, 1),
        },
        { address: 'x@null.test', action: 'failed', status: '5.1.10', diagnostic: '556 5.1.10 recipient domain has a null MX', lastAttemptAt: Date.UTC(2026, 10, 27, 10, 1) },
      ],
      originalHeaders,
    });
    const text = raw.toString('utf8');
    expect(text).toMatch(/^Content-Type: multipart\/report; report-type=delivery-status;/m);
    expect(text).toMatch(/^From: Mail Delivery System <MAILER-DAEMON@relay.test>/m);
    expect(text).toMatch(/^Auto-Submitted: auto-replied/m);
    expect(text).toMatch(/^Content-Type: message\/delivery-status/m);
    expect(text).toMatch(/^Content-Type: text\/rfc822-headers/m);

    const parsed = await simpleParser(raw);
    expect(parsed.to && 'text' in parsed.to ? parsed.to.text : '').toBe('clinic@sender.test');
    // mailparser shows message/delivery-status inline with the text, so read that part from the raw MIME.
    const status = /Content-Type: message\/delivery-status\r\n\r\n([\s\S]*?)\r\n--/.exec(text)?.[1] ?? '';
    expect(parsed.text).toContain('Final-Recipient: rfc822; patient@bounce.test');
    expect(status).toContain('Reporting-MTA: dns; relay.test');
    expect(status).toContain('Original-Envelope-Id: ENV-1');
    expect(status).toContain('Final-Recipient: rfc822; patient@bounce.test');
    expect(status).toContain('Original-Recipient: rfc822; patient@bounce.test');
    expect(status).toContain('Status: 5.1.1');
    expect(status).toContain('Remote-MTA: dns; mx.bounce.test');
    expect(status).toContain('Diagnostic-Code: smtp; 550 5.1.1 no such user');
    expect(status).toContain('Status: 5.1.10');
    const headers = parsed.attachments.find((a) => a.contentType === 'text/rfc822-headers')!.content.toString();
    expect(headers).toContain('Message-ID: <m1@sender.test>');
  });

  test('is never built for the null sender', async () => {
    await expect(buildDsn({ reportingMta: 'r', originalSender: '', queueId: 'q', arrivalAt: 0, recipients: [], originalHeaders })).rejects.toThrow(/null sender/);
  });
});
