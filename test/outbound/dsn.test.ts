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

  test('a delay warning: Action delayed, Will-Retry-Until, a warning-only text and its own subject and Message-ID', async () => {
    const raw = await buildDsn({
      reportingMta: 'relay.test',
      originalSender: 'clinic@sender.test',
      queueId: 'Q9',
      arrivalAt: Date.UTC(2026, 10, 27, 6),
      recipients: [
        {
          address: 'slow@busy.test',
          action: 'delayed',
          status: '4.2.1',
          remoteMta: 'mx.busy.test',
          diagnostic: '450 4.2.1 busy',
          lastAttemptAt: Date.UTC(2026, 10, 27, 10),
          willRetryUntil: Date.UTC(2026, 10, 28, 6),
        },
      ],
      originalHeaders,
      now: Date.UTC(2026, 10, 27, 10),
    });
    const text = raw.toString('utf8');
    expect(text).toMatch(/^Subject: Delayed Mail \(still being retried\)/m);
    expect(text).toMatch(/^Message-ID: <dsn-delayed\.Q9\.\d+@relay\.test>/m);
    expect(text).toContain('THIS IS A WARNING ONLY. YOU DO NOT NEED TO RESEND YOUR MESSAGE.');
    expect(text).toContain('Delivery will be retried until Sat, 28 Nov 2026 06:00:00 GMT.');
    const status = /Content-Type: message\/delivery-status\r\n\r\n([\s\S]*?)\r\n--/.exec(text)?.[1] ?? '';
    expect(status).toContain('Action: delayed');
    expect(status).toContain('Status: 4.2.1');
    expect(status).toContain('Will-Retry-Until: Sat, 28 Nov 2026 06:00:00 GMT');
  });

  test('a relayed report has its own subject; a bounce keeps its subject and Message-ID form, with no Will-Retry-Until', async () => {
    const relayed = (
      await buildDsn({
        reportingMta: 'relay.test',
        originalSender: 'clinic@sender.test',
        queueId: 'Q8',
        arrivalAt: 0,
        recipients: [{ address: 'a@ok.test', action: 'relayed', status: '2.0.0', remoteMta: 'mx.ok.test', diagnostic: '250 2.0.0 ok', lastAttemptAt: 0 }],
        originalHeaders,
      })
    ).toString('utf8');
    expect(relayed).toMatch(/^Subject: Successful Mail Delivery Report/m);
    expect(relayed).toContain('Action: relayed');
    const failed = (
      await buildDsn({
        reportingMta: 'relay.test',
        originalSender: 'clinic@sender.test',
        queueId: 'Q7',
        arrivalAt: 0,
        recipients: [{ address: 'a@gone.test', action: 'failed', status: '5.1.1', diagnostic: '550 5.1.1 no', lastAttemptAt: 0, willRetryUntil: 1 }],
        originalHeaders,
      })
    ).toString('utf8');
    expect(failed).toMatch(/^Subject: Undelivered Mail Returned to Sender/m);
    expect(failed).toMatch(/^Message-ID: <dsn\.Q7\.\d+@relay\.test>/m);
    expect(failed).not.toContain('Will-Retry-Until');
  });

  test('is never built for the null sender', async () => {
    await expect(buildDsn({ reportingMta: 'r', originalSender: '', queueId: 'q', arrivalAt: 0, recipients: [], originalHeaders })).rejects.toThrow(/null sender/);
  });
});
