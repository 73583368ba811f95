import { Readable } from 'node:stream';
import { readHeaderBlock } from '../../../src/portal/service/headers';

describe('readHeaderBlock', () => {
  it('decodes an RFC 2047 subject and the date from the header block, and stops reading at its end', async () => {
    let bodyPiecesRead = 0;
    async function* message(): AsyncGenerator<Buffer> {
      yield Buffer.from('Subject: =?UTF-8?B?w5xiZXJ3ZWlzdW5n?=\r\n  folded\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\n');
      yield Buffer.from('From: a@clinic.example\r\n\r\nbody line 1\r\n');
      for (let i = 0; i < 100; i++) {
        bodyPiecesRead += 1;
        yield Buffer.from('more body\r\n');
      }
    }
    const facts = await readHeaderBlock(Readable.from(message()));
    expect(facts).toEqual({ subject: 'Überweisung folded', date: '2026-11-29T10:00:00.000Z' });
    expect(bodyPiecesRead).toBeLessThan(2);
  });

  it('gives nothing for a message without those headers', async () => {
    expect(await readHeaderBlock(Readable.from([Buffer.from('From: a@clinic.example\r\n\r\nhi\r\n')]))).toEqual({});
  });
});
