import { buildReceivedHeader, rfc5322Date, splitReceivedHeader } from '../../src/inbound/received-header';

describe('Received header', () => {
  const at = new Date(Date.UTC(2026, 10, 27, 9, 5, 3));

  test('dates are RFC 5322 in UTC', () => {
    expect(rfc5322Date(at)).toBe('Fri, 27 Nov 2026 09:05:03 +0000');
  });

  test('names client, relay, protocol and TLS session, and folds with tabs', () => {
    const header = buildReceivedHeader({
      helo: 'client.example',
      ip: '192.0.2.7',
      hostname: 'relay.example',
      protocol: 'ESMTPSA',
      tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' },
      at,
    }).toString('ascii');
    expect(header).toBe(
      'Received: from client.example ([192.0.2.7])\r\n' +
        '\tby relay.example (Sealgate) with ESMTPSA\r\n' +
        '\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384);\r\n' +
        '\tFri, 27 Nov 2026 09:05:03 +0000\r\n',
    );
  });

  test('a hostile HELO cannot inject header lines', () => {
    const header = buildReceivedHeader({ helo: 'evil\r\nBcc: x@y.example', ip: '192.0.2.7', hostname: 'relay.example', protocol: 'ESMTP', at }).toString('ascii');
    expect(header.split('\r\n').filter((l) => l !== '' && !l.startsWith('\t'))).toHaveLength(1);
    expect(header).toContain('from evil??Bcc:?x?y.example ([192.0.2.7])');
  });

  test('splitReceivedHeader gives back exactly the submitted bytes', () => {
    const submitted = Buffer.from('Received: from other\r\n\tby x; date\r\nSubject: hi\r\n\r\nbody\r\n');
    const header = buildReceivedHeader({ ip: '192.0.2.7', hostname: 'relay.example', protocol: 'ESMTP', at });
    const split = splitReceivedHeader(Buffer.concat([header, submitted]));
    expect(split?.received).toBe(header.toString('ascii'));
    expect(split?.submitted.equals(submitted)).toBe(true);
    expect(splitReceivedHeader(Buffer.from('Subject: x\r\n\r\n'))).toBeUndefined();
  });
});
