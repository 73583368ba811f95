import type { PeerCertificate, SecureContextOptions, TLSSocket } from 'node:tls';
import type { Config } from '../config/schema';
import { CERT_CURVES, CURVE_ALIASES, GROUPS, SIGALGS, TLS12_STATIC_RSA_SUITES, TLS12_SUITES, TLS13_SUITES } from './nist';

export type TlsVersion = 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
const VERSION_ORDER: readonly TlsVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/**
 * The one TLS profile used inbound and outbound: which versions, suites, groups and key sizes are
 * acceptable. `options()` is what we ask for; `check()` judges what was actually negotiated.
 */
export interface TlsProfile {
  readonly minVersion: TlsVersion;
  /** OpenSSL names, TLS 1.3 suites first (Node splits them into the 1.3 list itself). */
  readonly ciphers: readonly string[];
  readonly groups: readonly string[];
  readonly minRsaBits: number;
  readonly minDhBits: number;
  /** IANA names of every acceptable suite, for judging `getCipher().standardName`. */
  readonly allowedSuites: ReadonlySet<string>;
  /** Settings that go below SP 800-52r2; empty for a compliant profile. */
  readonly nonCompliance: readonly string[];
}

export class TlsProfileError extends Error {
  override name = 'TlsProfileError';
}

type ProfileConfig = Config['tlsProfile'];

const IANA_BY_OPENSSL = new Map<string, string>([...TLS12_SUITES, ...TLS12_STATIC_RSA_SUITES, ...TLS13_SUITES.map((name) => [name, name] as const)]);

/** Builds the profile, refusing any loosening below NIST unless `allowNonCompliantProfile` is set. */
export function buildTlsProfile(config: ProfileConfig): TlsProfile {
  const nonCompliance: string[] = [];
  const approved = new Set<string>([...TLS13_SUITES, ...TLS12_SUITES.map(([name]) => name)]);
  if (config.allowStaticRsa) for (const [name] of TLS12_STATIC_RSA_SUITES) approved.add(name);

  const ciphers = config.ciphers ?? [...TLS13_SUITES, ...approved].filter((name, i, all) => all.indexOf(name) === i);
  const groups = config.groups ?? GROUPS;

  const offList = ciphers.filter((name) => !approved.has(name));
  if (offList.length > 0) nonCompliance.push(`tlsProfile.ciphers: not SP 800-52r2 approved: ${offList.join(', ')}`);
  const offGroups = groups.filter((name) => !GROUPS.includes(name));
  if (offGroups.length > 0) nonCompliance.push(`tlsProfile.groups: not SP 800-52r2 approved: ${offGroups.join(', ')}`);
  if (VERSION_ORDER.indexOf(config.minVersion) < VERSION_ORDER.indexOf('TLSv1.2')) {
    nonCompliance.push(`tlsProfile.minVersion: ${config.minVersion} is below TLSv1.2`);
  }
  if (config.minRsaBits < 2048) nonCompliance.push(`tlsProfile.minRsaBits: ${config.minRsaBits} is below 2048`);
  if (config.minDhBits < 2048) nonCompliance.push(`tlsProfile.minDhBits: ${config.minDhBits} is below 2048`);
  if (!ciphers.some((name) => TLS13_SUITES.includes(name)) && config.minVersion === 'TLSv1.3') {
    throw new TlsProfileError('tlsProfile: minVersion TLSv1.3 needs at least one TLS 1.3 suite in tlsProfile.ciphers');
  }
  if (nonCompliance.length > 0 && !config.allowNonCompliantProfile) {
    throw new TlsProfileError(`the TLS profile goes below NIST SP 800-52r2 (set tlsProfile.allowNonCompliantProfile: true to accept this):\n  - ${nonCompliance.join('\n  - ')}`);
  }

  const allowedSuites = new Set<string>();
  for (const name of ciphers) allowedSuites.add(IANA_BY_OPENSSL.get(name) ?? name);
  return { minVersion: config.minVersion, ciphers, groups, minRsaBits: config.minRsaBits, minDhBits: config.minDhBits, allowedSuites, nonCompliance };
}

/** The compliant default profile (what an empty `tlsProfile` section gives). */
export function defaultTlsProfile(): TlsProfile {
  return buildTlsProfile({ allowStaticRsa: false, minVersion: 'TLSv1.2', minRsaBits: 2048, minDhBits: 2048, allowNonCompliantProfile: false });
}

/** Options for tls.createSecureContext / tls.connect / smtp-server, shared by both directions. */
export function tlsContextOptions(profile: TlsProfile): SecureContextOptions {
  // @SECLEVEL=2 makes OpenSSL itself refuse DH < 2048 and RSA < 2048 in the chain it validates;
  // a profile that was loosened on purpose drops to level 1 so the loosening can take effect.
  const secLevel = profile.nonCompliance.length > 0 ? '@SECLEVEL=1' : '@SECLEVEL=2';
  return {
    minVersion: profile.minVersion,
    maxVersion: 'TLSv1.3',
    ciphers: [...profile.ciphers, secLevel].join(':'),
    ecdhCurve: profile.groups.join(':'),
    sigalgs: SIGALGS.join(':'),
    honorCipherOrder: true,
    dhparam: 'auto',
  };
}

/** What a TLS session actually negotiated, as recorded in evidence. */
export interface NegotiatedTls {
  protocol: string | null;
  /** IANA name of the suite. */
  cipher: string | null;
  /** Key-exchange group as the profile names it (P-256, ffdhe2048, X25519, ...), when known. */
  group: string | null;
  groupBits: number | null;
  peerKey: { type: string; bits: number | null } | null;
}

export interface TlsCheck {
  compliant: boolean;
  problems: string[];
  negotiated: NegotiatedTls;
}

/**
 * Judges a finished handshake against the profile. The client side learns the group from
 * getEphemeralKeyInfo(); a server socket cannot, so the group is null there (our own ecdhCurve
 * list already limits what a server can agree to).
 */
export function checkNegotiated(socket: TLSSocket, profile: TlsProfile): TlsCheck {
  const negotiated = describeNegotiated(socket);
  const problems: string[] = [];
  const { protocol, cipher, group, groupBits, peerKey } = negotiated;

  if (!protocol || VERSION_ORDER.indexOf(protocol as TlsVersion) < VERSION_ORDER.indexOf(profile.minVersion)) {
    problems.push(`protocol ${protocol ?? 'unknown'} is below ${profile.minVersion}`);
  }
  if (!cipher || !profile.allowedSuites.has(cipher)) problems.push(`cipher suite ${cipher ?? 'unknown'} is not in the profile`);
  if (group !== null) {
    if (!profile.groups.includes(group)) problems.push(`key-exchange group ${group} is not in the profile`);
    else if (group.startsWith('ffdhe') && groupBits !== null && groupBits < profile.minDhBits) {
      problems.push(`DH group of ${groupBits} bits is below ${profile.minDhBits}`);
    }
  } else if (groupBits !== null && groupBits < profile.minDhBits) {
    problems.push(`DH key exchange of ${groupBits} bits is below ${profile.minDhBits}`);
  }
  if (peerKey) {
    if (peerKey.type === 'RSA' && (peerKey.bits ?? 0) < profile.minRsaBits) {
      problems.push(`peer RSA key of ${peerKey.bits ?? 'unknown'} bits is below ${profile.minRsaBits}`);
    }
    if (peerKey.type === 'EC' && !CERT_CURVES.includes(peerKey.bits === 256 ? 'P-256' : peerKey.bits === 384 ? 'P-384' : peerKey.bits === 521 ? 'P-521' : '')) {
      problems.push(`peer EC key of ${peerKey.bits ?? 'unknown'} bits is not on P-256/P-384/P-521`);
    }
  }
  return { compliant: problems.length === 0, problems, negotiated };
}

export function describeNegotiated(socket: TLSSocket): NegotiatedTls {
  const protocol = socket.getProtocol() ?? null;
  const cipherInfo = socket.getCipher() as { standardName?: string; name?: string } | undefined;
  const cipher = cipherInfo?.standardName ?? (cipherInfo?.name ? (IANA_BY_OPENSSL.get(cipherInfo.name) ?? cipherInfo.name) : null);
  let group: string | null = null;
  let groupBits: number | null = null;
  const ephemeral = socket.getEphemeralKeyInfo() as { type?: string; name?: string; size?: number } | null;
  if (ephemeral && ephemeral.type) {
    groupBits = ephemeral.size ?? null;
    if (ephemeral.type === 'ECDH') group = ephemeral.name ? (CURVE_ALIASES[ephemeral.name] ?? ephemeral.name) : null;
    else if (ephemeral.type === 'DH') group = groupBits ? `ffdhe${groupBits}` : 'ffdhe';
  }
  const peerKey = describePeerKey(socket.getPeerCertificate());
  return { protocol, cipher, group, groupBits, peerKey };
}

function describePeerKey(cert: PeerCertificate | null | undefined): NegotiatedTls['peerKey'] {
  if (!cert || Object.keys(cert).length === 0) return null;
  const withKey = cert as PeerCertificate & { bits?: number; asn1Curve?: string; nistCurve?: string; pubkey?: Buffer };
  const type = withKey.asn1Curve || withKey.nistCurve ? 'EC' : withKey.modulus ? 'RSA' : 'unknown';
  return { type, bits: withKey.bits ?? null };
}
