/** Encryption at rest for portal copies: the key file, chunked AES-256-GCM streams, sealed facts, link tokens. */
export { PortalKeyError } from './errors';
export { addKeyEncryptionKey, loadOrCreateKeyring, retireKeyEncryptionKeys, type Keyring } from './keyring';
export { newDataKey, seal, unseal } from './seal';
export { CHUNK_OVERHEAD, CHUNK_SIZE, decryptStream, encryptStream } from './stream';
export { newLinkToken, tokenHash } from './tokens';
