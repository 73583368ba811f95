/**
 * A portal key or ciphertext could not be used: unknown key id, altered wrapped key, a copy that was
 * crypto-shredded, or a sealed value or message chunk that failed authentication.
 */
export class PortalKeyError extends Error {
  override name = 'PortalKeyError';
}
