import { extractHeaderFacts, parsedHeaderFacts, plainHeaderFacts } from '../../src/inbound/header-facts';
import type { HeaderFacts } from '../../src/store/types';

/** The facts as the relay stored them when every block went through mailparser: the reference the plain reader must match. */
async function mailparserFacts(headerBlock: Buffer): Promise<HeaderFacts> {
  return headerBlock.length === 0 ? {} : parsedHeaderFacts(headerBlock);
}

/** A Date that does not parse becomes the time of parsing in both: compare those as "now". */
function withNow(facts: HeaderFacts, before: number, after: number): HeaderFacts {
  if (facts.date === undefined) return facts;
  const at = Date.parse(facts.date);
  return at >= before && at <= after ? { ...facts, date: 'now' } : facts;
}

async function compare(block: Buffer): Promise<{ plain: boolean; ours: HeaderFacts; reference: HeaderFacts }> {
  const before = Date.now();
  const ours = await extractHeaderFacts(block);
  const reference = await mailparserFacts(block);
  const after = Date.now();
  return { plain: plainHeaderFacts(block) !== undefined, ours: withNow(ours, before, after), reference: withNow(reference, before, after) };
}

const crlf = (...lines: string[]) => Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8');

const VARIANTS: Record<string, string[][]> = {
  from: [
    [],
    ['From: sender@clinic.test'],
    ['From: Jürgen Müller <j@clinic.test>'],
    ['From: "Doe, Jane"', '  <jane@clinic.test>'],
    ['From:'],
    ['From: =?utf-8?q?J=C3=BCrgen?= <j@clinic.test>'],
    ['From: first@clinic.test', 'From: second@clinic.test'],
    ['from :  spaced@clinic.test  '],
  ],
  date: [
    [],
    ['Date: Mon, 30 Nov 2026 08:00:00 +0000'],
    ['Date: Mon, 30 Nov 2026 08:00:00 +0100 (CET)'],
    ['Date: Mon, 30 Nov 2026', '\t08:00:00 -0500'],
    ['Date: garbage'],
    ['Date:'],
    ['Date: 1 Dec 2026 10:00 GMT', 'Date: 2 Dec 2026 10:00 GMT'],
    ['DATE: 2026-11-30T08:00:00Z'],
    ['Date: Mön, 30 Nov 2026 08:00:00 +0000'],
  ],
  messageId: [
    [],
    ['Message-ID: <m1@clinic.test>'],
    ['Message-Id: m2@clinic.test'],
    ['Message-ID: <m3@clinic.test'],
    ['Message-ID:'],
    ['Message-ID:', 'Message-ID: <second@clinic.test>'],
    ['Message-ID:', ' <folded@clinic.test>'],
    ['Message-ID: <ü@clinic.test>'],
    ['Message-ID: =?utf-8?q?enc?=@clinic.test'],
    ['message-id : <spaced@clinic.test> '],
  ],
  tlsRequired: [
    [],
    ['TLS-Required: No'],
    ['TLS-Required:   no  '],
    ['TLS-Required:'],
    ['TLS-Required: No', 'TLS-Required: No'],
    ['TLS-Required:', 'TLS-Required: No'],
    ['TLS-Required:', '  No'],
    ['tls-required: Nö'],
  ],
  other: [[], ['Subject: =?utf-8?b?SGVsbG8=?='], ['Received: from a by b;', '\tMon, 30 Nov 2026 08:00:00 +0000', 'X-Mailer: test'], ['MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8']],
};

function* combinations(): Generator<Buffer> {
  // A fixed pseudo-random walk over the variants (the same blocks every run), plus every variant once.
  let seed = 15;
  const next = (n: number) => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return seed % n;
  };
  const keys = Object.keys(VARIANTS);
  for (const key of keys) for (const variant of VARIANTS[key]!) if (variant.length > 0) yield crlf(...variant);
  for (let i = 0; i < 250; i++) {
    const parts = keys.map((key) => VARIANTS[key]![next(VARIANTS[key]!.length)]!);
    // Field order varies too.
    const order = parts.map((p, j) => ({ p, k: next(100) + j / 10 })).sort((a, b) => a.k - b.k);
    const lines = order.flatMap((o) => o.p);
    if (lines.length > 0) yield crlf(...lines);
  }
}

describe('header facts', () => {
  test('the plain reader stores exactly what mailparser did, over every combination of the tricky fields', async () => {
    let plain = 0;
    let total = 0;
    for (const block of combinations()) {
      const { plain: wasPlain, ours, reference } = await compare(block);
      expect({ block: block.toString('latin1'), facts: ours }).toEqual({ block: block.toString('latin1'), facts: reference });
      total++;
      if (wasPlain) plain++;
    }
    // Most blocks take the plain path (the rest: an encoded word in a Message-ID).
    expect(plain).toBeGreaterThan(total / 2);
  });

  test('a typical submission is read without mailparser', () => {
    const block = crlf(
      'Received: from app.clinic.test',
      'From: Reminders <noreply@clinic.test>',
      'To: patient@partner.test',
      'Subject: =?utf-8?q?Termin?=',
      'Date: Mon, 30 Nov 2026 08:00:00 +0000',
      'Message-ID: <r1@clinic.test>',
      'TLS-Required: No',
    );
    expect(plainHeaderFacts(block)).toEqual({ messageId: '<r1@clinic.test>', from: 'Reminders <noreply@clinic.test>', date: '2026-11-30T08:00:00.000Z', tlsRequired: 'No' });
  });

  test.each([
    ['an mbox first line', Buffer.from('From sender@clinic.test Mon Nov 30 08:00:00 2026\r\nMessage-ID: <a@b>\r\n\r\n')],
    ['a bare LF', Buffer.from('Message-ID: <a@b>\nFrom: x@y\r\n\r\n')],
    ['a line without a colon', crlf('Message-ID: <a@b>', 'not a field')],
    ['a whitespace-only line', crlf('Message-ID: <a@b>', '   ', 'From: x@y')],
    ['a folded first line', crlf(' folded', 'Message-ID: <a@b>')],
    ['an encoded word in the Message-ID', crlf('Message-ID: =?utf-8?q?a?=@b')],
    ['latin1 bytes', Buffer.from('From: M\xfcller <m@x>\r\nDate: 30 Nov 2026 08:00 GMT\r\nTLS-Required: n\xf6\r\n\r\n', 'latin1')],
    ['no blank line at the end', Buffer.from('Message-ID: <a@b>\r\nFrom: x@y')],
    ['only a blank line', Buffer.from('\r\n')],
  ])('%s: the same facts as mailparser', async (_name, block) => {
    const { ours, reference } = await compare(block);
    expect(ours).toEqual(reference);
  });
});
