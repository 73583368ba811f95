import { createHash } from 'node:crypto';
import { newDataKey, newLinkToken, PortalKeyError, seal, tokenHash, unseal } from '../../../src/portal/crypto';

describe('sealed facts', () => {
  const key = newDataKey();
  const facts = { recipient: 'pat@example.test', from: 'dr@clinic.test', subject: 'Your results CANARY' };

  test('round trip, and no plaintext in the sealed text', () => {
    const sealed = seal(key, 'item-1', facts);
    expect(Buffer.from(sealed, 'base64').toString('latin1')).not.toContain('CANARY');
    expect(unseal(key, 'item-1', sealed)).toEqual(facts);
  });

  test('wrong key, wrong item or altered text fail with PortalKeyError', () => {
    const sealed = seal(key, 'item-1', facts);
    expect(() => unseal(newDataKey(), 'item-1', sealed)).toThrow(PortalKeyError);
    expect(() => unseal(key, 'item-2', sealed)).toThrow(PortalKeyError);
    const altered = Buffer.from(sealed, 'base64');
    altered[20] = altered[20]! ^ 0x40;
    expect(() => unseal(key, 'item-1', altered.toString('base64'))).toThrow(PortalKeyError);
  });
});

describe('link tokens', () => {
  test('256 random bits, base64url, different every time', () => {
    const a = newLinkToken();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(a, 'base64url')).toHaveLength(32);
    expect(newLinkToken()).not.toBe(a);
  });

  test('token hash is SHA-256 hex', () => {
    expect(tokenHash('abc')).toBe(createHash('sha256').update('abc').digest('hex'));
    expect(tokenHash('abc')).toMatch(/^[0-9a-f]{64}$/);
  });
});
