import type { Config } from '../config/schema';
import type { TlsProfile } from './tls-profile';
import { buildTrustStore } from './trust';

/** What every outbound MX session must use: the TLS profile, the MX trust store, our EHLO name and the timeouts. */
export interface MxSessionOptions {
  profile: TlsProfile;
  /** Trust store (undefined: Node's default). */
  ca?: string[];
  /** Our EHLO name. */
  ehloName: string;
  connectTimeout: number;
  greetingTimeout: number;
  socketTimeout: number;
}

export function buildSessionOptions(config: Pick<Config, 'hostname' | 'outbound'>, profile: TlsProfile): MxSessionOptions {
  return {
    profile,
    ca: buildTrustStore(config.outbound.extraCaFile),
    ehloName: config.hostname,
    connectTimeout: config.outbound.connectTimeout,
    greetingTimeout: config.outbound.greetingTimeout,
    socketTimeout: config.outbound.socketTimeout,
  };
}
