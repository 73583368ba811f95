/**
 * Authoritative test DNS server (UDP + TCP) on a loopback address, for the test world.
 * Records are set and changed at runtime; every query is logged.
 */

export type DnsRecordType = 'A' | 'AAAA' | 'MX' | 'TXT' | 'CNAME';

export interface MxRecordData {
  preference: number;
  /** Host name; '.' for a null MX (RFC 7505). */
  exchange: string;
}

/** Record data per type. TXT: a string, or an array of character-strings joined by resolvers. */
export interface DnsRecordDataMap {
  A: string;
  AAAA: string;
  MX: MxRecordData;
  TXT: string | string[];
  CNAME: string;
}

/** How the server misbehaves for a name: SERVFAIL, REFUSED, or no answer at all (client times out). */
export type DnsFailure = 'servfail' | 'refused' | 'timeout';

export interface DnsQueryLogEntry {
  name: string;
  type: string;
  transport: 'udp' | 'tcp';
  /** What was answered: 'NOERROR', 'NXDOMAIN', 'SERVFAIL', 'REFUSED', or 'DROPPED' (timeout mode). */
  rcode: string;
  answers: number;
  at: Date;
}

export interface DnsServerOptions {
  /** Loopback address to listen on (default 127.0.0.1). */
  host?: string;
  /** Port (default 0: chosen at runtime; UDP and TCP share it). */
  port?: number;
  /** Zones served authoritatively: unknown names inside answer NXDOMAIN; names outside answer REFUSED. */
  zones?: string[];
  /** Default TTL for records set without one (default 300). */
  defaultTtl?: number;
}

export interface DnsServer {
  readonly host: string;
  readonly port: number;
  /** 'host:port', ready for `Resolver.setServers([...])` or the relay's `dns.servers`. */
  readonly address: string;
  /** Every query received, oldest first. */
  readonly queries: DnsQueryLogEntry[];
  addZone(zone: string): void;
  /** Replace the records of `type` at `name` (an empty list removes them; the name stays known if other types exist). */
  set<T extends DnsRecordType>(name: string, type: T, records: DnsRecordDataMap[T][], ttl?: number): void;
  /** Remove `name` entirely (all types), or only one type. */
  remove(name: string, type?: DnsRecordType): void;
  /** Make queries for `name` (optionally only one type) fail; `null` restores normal answers. */
  fail(name: string, failure: DnsFailure | null, type?: DnsRecordType): void;
  /** Queries for `name` (case-insensitive, trailing dot ignored), optionally one type. */
  queriesFor(name: string, type?: string): DnsQueryLogEntry[];
  clearLog(): void;
  close(): Promise<void>;
}

export async function startDnsServer(options: DnsServerOptions = {}): Promise<DnsServer> {
  void options;
  throw new Error('not implemented yet');
}
