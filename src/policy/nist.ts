/**
 * NIST SP 800-52 Rev. 2 TLS facts (section 3.3.1), as OpenSSL names with their IANA names.
 * Pure data: the profile module turns it into Node TLS options and negotiation checks.
 */

/** TLS 1.2 forward-secret suites, in preference order (ECDHE before DHE, AEAD before CBC). */
export const TLS12_SUITES: ReadonlyArray<readonly [openssl: string, iana: string]> = [
  ['ECDHE-ECDSA-AES256-GCM-SHA384', 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384'],
  ['ECDHE-ECDSA-AES128-GCM-SHA256', 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256'],
  ['ECDHE-RSA-AES256-GCM-SHA384', 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384'],
  ['ECDHE-RSA-AES128-GCM-SHA256', 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256'],
  ['ECDHE-ECDSA-AES256-CCM', 'TLS_ECDHE_ECDSA_WITH_AES_256_CCM'],
  ['ECDHE-ECDSA-AES128-CCM', 'TLS_ECDHE_ECDSA_WITH_AES_128_CCM'],
  ['DHE-RSA-AES256-GCM-SHA384', 'TLS_DHE_RSA_WITH_AES_256_GCM_SHA384'],
  ['DHE-RSA-AES128-GCM-SHA256', 'TLS_DHE_RSA_WITH_AES_128_GCM_SHA256'],
  ['DHE-RSA-AES256-CCM', 'TLS_DHE_RSA_WITH_AES_256_CCM'],
  ['DHE-RSA-AES128-CCM', 'TLS_DHE_RSA_WITH_AES_128_CCM'],
  ['ECDHE-ECDSA-AES256-CCM8', 'TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8'],
  ['ECDHE-ECDSA-AES128-CCM8', 'TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8'],
  ['DHE-RSA-AES256-CCM8', 'TLS_DHE_RSA_WITH_AES_256_CCM_8'],
  ['DHE-RSA-AES128-CCM8', 'TLS_DHE_RSA_WITH_AES_128_CCM_8'],
  ['ECDHE-ECDSA-AES256-SHA384', 'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384'],
  ['ECDHE-ECDSA-AES128-SHA256', 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256'],
  ['ECDHE-RSA-AES256-SHA384', 'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384'],
  ['ECDHE-RSA-AES128-SHA256', 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256'],
  ['DHE-RSA-AES256-SHA256', 'TLS_DHE_RSA_WITH_AES_256_CBC_SHA256'],
  ['DHE-RSA-AES128-SHA256', 'TLS_DHE_RSA_WITH_AES_128_CBC_SHA256'],
  ['ECDHE-ECDSA-AES256-SHA', 'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA'],
  ['ECDHE-ECDSA-AES128-SHA', 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA'],
  ['ECDHE-RSA-AES256-SHA', 'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA'],
  ['ECDHE-RSA-AES128-SHA', 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA'],
  ['DHE-RSA-AES256-SHA', 'TLS_DHE_RSA_WITH_AES_256_CBC_SHA'],
  ['DHE-RSA-AES128-SHA', 'TLS_DHE_RSA_WITH_AES_128_CBC_SHA'],
];

/**
 * Static-RSA key transport suites SP 800-52r2 still lists (no forward secrecy). Off by default;
 * `tlsProfile.allowStaticRsa` adds them after the forward-secret ones.
 */
export const TLS12_STATIC_RSA_SUITES: ReadonlyArray<readonly [openssl: string, iana: string]> = [
  ['AES256-GCM-SHA384', 'TLS_RSA_WITH_AES_256_GCM_SHA384'],
  ['AES128-GCM-SHA256', 'TLS_RSA_WITH_AES_128_GCM_SHA256'],
  ['AES256-CCM', 'TLS_RSA_WITH_AES_256_CCM'],
  ['AES128-CCM', 'TLS_RSA_WITH_AES_128_CCM'],
  ['AES256-CCM8', 'TLS_RSA_WITH_AES_256_CCM_8'],
  ['AES128-CCM8', 'TLS_RSA_WITH_AES_128_CCM_8'],
  ['AES256-SHA256', 'TLS_RSA_WITH_AES_256_CBC_SHA256'],
  ['AES128-SHA256', 'TLS_RSA_WITH_AES_128_CBC_SHA256'],
  ['AES256-SHA', 'TLS_RSA_WITH_AES_256_CBC_SHA'],
  ['AES128-SHA', 'TLS_RSA_WITH_AES_128_CBC_SHA'],
];

/** TLS 1.3 suites: OpenSSL and IANA use the same names. ChaCha20-Poly1305 is deliberately absent. */
export const TLS13_SUITES: readonly string[] = ['TLS_AES_256_GCM_SHA384', 'TLS_AES_128_GCM_SHA256', 'TLS_AES_128_CCM_SHA256', 'TLS_AES_128_CCM_8_SHA256'];

/** Key-exchange groups in preference order. X25519/X448 are not on the r2 list. */
export const GROUPS: readonly string[] = ['P-256', 'P-384', 'P-521', 'ffdhe2048', 'ffdhe3072', 'ffdhe4096', 'ffdhe6144', 'ffdhe8192'];

/** Signature algorithms: SHA-2 only (no SHA-1, no MD5). */
export const SIGALGS: readonly string[] = [
  'ecdsa_secp256r1_sha256',
  'ecdsa_secp384r1_sha384',
  'ecdsa_secp521r1_sha512',
  'rsa_pss_rsae_sha256',
  'rsa_pss_rsae_sha384',
  'rsa_pss_rsae_sha512',
  'rsa_pss_pss_sha256',
  'rsa_pss_pss_sha384',
  'rsa_pss_pss_sha512',
  'rsa_pkcs1_sha256',
  'rsa_pkcs1_sha384',
  'rsa_pkcs1_sha512',
];

/** OpenSSL's names for the curves Node reports in getEphemeralKeyInfo(), mapped to the profile's names. */
export const CURVE_ALIASES: Readonly<Record<string, string>> = {
  prime256v1: 'P-256',
  secp256r1: 'P-256',
  'P-256': 'P-256',
  secp384r1: 'P-384',
  'P-384': 'P-384',
  secp521r1: 'P-521',
  'P-521': 'P-521',
};

/** EC curves acceptable for certificate keys. */
export const CERT_CURVES: readonly string[] = ['P-256', 'P-384', 'P-521'];
