import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** AES-256-GCM pieces shared by key wrapping, sealing and the chunked stream. */
export const IV_BYTES = 12;
export const TAG_BYTES = 16;
export const KEY_BYTES = 32;

/** iv | ciphertext | tag, under a fresh random 96-bit IV. */
export function aeadEncrypt(key: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]);
}

/** The plaintext of an aeadEncrypt record; throws when anything (record, key, associated data) differs. */
export function aeadDecrypt(key: Buffer, record: Buffer, aad: Buffer): Buffer {
  if (record.length < IV_BYTES + TAG_BYTES) throw new Error('ciphertext too short');
  const iv = record.subarray(0, IV_BYTES);
  const tag = record.subarray(record.length - TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(record.subarray(IV_BYTES, record.length - TAG_BYTES)), decipher.final()]);
}
