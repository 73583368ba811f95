import { randomBytes } from 'node:crypto';
import { aeadDecrypt, aeadEncrypt, KEY_BYTES } from './aead';
import { PortalKeyError } from './errors';

/** A fresh 256-bit data key for one portal copy. */
export function newDataKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

/** Associated data of a sealed value: distinct from every stream chunk's, so the two can never be swapped. */
function sealAad(itemId: string): Buffer {
  return Buffer.from(`${itemId}|sealed`, 'utf8');
}

/** Small JSON sealed under the item's data key (AES-256-GCM, item id as associated data), base64. */
export function seal(dataKey: Buffer, itemId: string, value: unknown): string {
  return aeadEncrypt(dataKey, Buffer.from(JSON.stringify(value), 'utf8'), sealAad(itemId)).toString('base64');
}

/** The value `seal` sealed; PortalKeyError when the key, the item id or the sealed text differ. */
export function unseal<T>(dataKey: Buffer, itemId: string, sealed: string): T {
  let plain: Buffer;
  try {
    plain = aeadDecrypt(dataKey, Buffer.from(sealed, 'base64'), sealAad(itemId));
  } catch (error) {
    throw new PortalKeyError(`sealed facts of portal item ${itemId} failed authentication`, { cause: error });
  }
  return JSON.parse(plain.toString('utf8')) as T;
}
