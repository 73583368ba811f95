import { createHash, randomBytes } from 'node:crypto';

/** A link token: 256 random bits, base64url (43 characters). Only its hash is stored. */
export function newLinkToken(): string {
  return randomBytes(32).toString('base64url');
}

/** SHA-256 (hex) of a link token: what the store keeps and looks tokens up by. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
