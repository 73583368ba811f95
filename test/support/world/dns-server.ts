import dgram from 'node:dgram';
import net from 'node:net';
import * as dnsPacket from 'dns-packet';
import type { Answer, Packet, Question } from 'dns-packet';

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
  const host = options.host ?? '127.0.0.1';
  const defaultTtl = options.defaultTtl ?? 300;
  const zone = new ZoneData(defaultTtl);
  for (const z of options.zones ?? []) zone.addZone(z);
  const queries: DnsQueryLogEntry[] = [];

  const answer = (query: Packet, transport: 'udp' | 'tcp', maxSize: number): Buffer | null => {
    const question = query.questions?.[0];
    if (!question) return null;
    const result = zone.resolve(question);
    queries.push({
      name: normalizeName(question.name),
      type: question.type,
      transport,
      rcode: result === 'timeout' ? 'DROPPED' : result.rcodeName,
      answers: result === 'timeout' ? 0 : result.answers.length,
      at: new Date(),
    });
    if (result === 'timeout') return null;
    const ednsRequested = (query.additionals ?? []).some((record) => record.type === 'OPT');
    const response: Packet = {
      type: 'response',
      id: query.id ?? 0,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | result.rcode,
      questions: [question],
      answers: result.answers,
      authorities: result.authorities,
      additionals: ednsRequested ? [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: 0, options: [] } as unknown as Answer] : [],
    };
    const encoded = dnsPacket.encode(response);
    if (encoded.length <= maxSize) return encoded;
    // Too big for UDP: set TC so the client retries over TCP.
    return dnsPacket.encode({ ...response, flags: (response.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE, answers: [], authorities: [] });
  };

  const tcpSockets = new Set<net.Socket>();
  const onDatagram = (udp: dgram.Socket, message: Buffer, remote: dgram.RemoteInfo): void => {
    const query = safeDecode(message);
    if (!query) return;
    const opt = (query.additionals ?? []).find((record) => record.type === 'OPT') as { udpPayloadSize?: number } | undefined;
    const reply = answer(query, 'udp', Math.max(512, opt?.udpPayloadSize ?? 512));
    if (reply) udp.send(reply, remote.port, remote.address);
  };
  const onTcpConnection = (socket: net.Socket): void => {
    tcpSockets.add(socket);
    socket.on('close', () => tcpSockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      // Length-prefixed frames (RFC 1035 §4.2.2); bounded by the data received.
      while (pending.length >= 2) {
        const length = pending.readUInt16BE(0);
        if (pending.length < 2 + length) break;
        const query = safeDecode(pending.subarray(2, 2 + length));
        pending = pending.subarray(2 + length);
        if (!query) continue;
        const reply = answer(query, 'tcp', 65535);
        if (reply) {
          const frame = Buffer.alloc(2 + reply.length);
          frame.writeUInt16BE(reply.length, 0);
          reply.copy(frame, 2);
          socket.write(frame);
        }
      }
    });
  };

  const { udp, tcp, port } = await listenBoth(host, options.port ?? 0, onDatagram, onTcpConnection);

  return {
    host,
    port,
    address: `${host}:${port}`,
    queries,
    addZone: (z) => zone.addZone(z),
    set: (name, type, records, ttl) => zone.set(name, type, records, ttl),
    remove: (name, type) => zone.remove(name, type),
    fail: (name, failure, type) => zone.fail(name, failure, type),
    queriesFor: (name, type) => queries.filter((q) => q.name === normalizeName(name) && (type === undefined || q.type === type)),
    clearLog: () => void queries.splice(0, queries.length),
    close: async () => {
      for (const socket of tcpSockets) socket.destroy();
      await Promise.all([
        new Promise<void>((resolve) => tcp.close(() => resolve())),
        new Promise<void>((resolve) => {
          try {
            udp.close(() => resolve());
          } catch {
            resolve(); // already closed
          }
        }),
      ]);
    },
  };
}

/** Bind UDP and TCP on the same port; with port 0, retry a few times when TCP finds the UDP port taken. */
export async function listenBoth(
  host: string,
  port: number,
  onDatagram: (udp: dgram.Socket, message: Buffer, remote: dgram.RemoteInfo) => void,
  onTcpConnection: (socket: net.Socket) => void,
): Promise<{ udp: dgram.Socket; tcp: net.Server; port: number }> {
  const attempts = port === 0 ? 10 : 1;
  for (let attempt = 1; ; attempt++) {
    const udp = dgram.createSocket('udp4');
    const tcp = net.createServer(onTcpConnection);
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(port, host, () => {
          udp.off('error', reject);
          resolve();
        });
      });
      const boundPort = udp.address().port;
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(boundPort, host, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
      udp.on('error', () => undefined); // a bad datagram must not take the test process down
      udp.on('message', (message, remote) => onDatagram(udp, message, remote));
      tcp.on('error', () => undefined);
      return { udp, tcp, port: boundPort };
    } catch (error) {
      try {
        udp.close();
      } catch {
        // never bound
      }
      tcp.close(() => undefined);
      if (attempt >= attempts) throw error;
    }
  }
}

function safeDecode(buffer: Buffer): Packet | null {
  try {
    const packet = dnsPacket.decode(buffer);
    return packet.type === 'query' ? packet : null;
  } catch {
    return null;
  }
}

export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/\.+$/, '');
}

const RCODES = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;
type RcodeName = keyof typeof RCODES;

interface Resolution {
  rcode: number;
  rcodeName: RcodeName;
  answers: Answer[];
  authorities: Answer[];
}

interface RecordSet {
  ttl: number;
  data: unknown[];
}

/** The records, zones and injected failures, and the lookup logic. */
class ZoneData {
  private readonly zones = new Set<string>();
  private readonly names = new Map<string, Map<DnsRecordType, RecordSet>>();
  private readonly failures = new Map<string, DnsFailure>();

  constructor(private readonly defaultTtl: number) {}

  addZone(zone: string): void {
    this.zones.add(normalizeName(zone));
  }

  set<T extends DnsRecordType>(name: string, type: T, records: DnsRecordDataMap[T][], ttl?: number): void {
    const key = normalizeName(name);
    const types = this.names.get(key) ?? new Map<DnsRecordType, RecordSet>();
    if (records.length === 0) types.delete(type);
    else types.set(type, { ttl: ttl ?? this.defaultTtl, data: [...records] });
    if (types.size > 0) this.names.set(key, types);
    else this.names.delete(key);
  }

  remove(name: string, type?: DnsRecordType): void {
    const key = normalizeName(name);
    if (type === undefined) this.names.delete(key);
    else this.set(key, type, []);
  }

  fail(name: string, failure: DnsFailure | null, type?: DnsRecordType): void {
    const key = `${normalizeName(name)}|${type ?? '*'}`;
    if (failure === null) this.failures.delete(key);
    else this.failures.set(key, failure);
  }

  resolve(question: Question): Resolution | 'timeout' {
    let name = normalizeName(question.name);
    const failure = this.failures.get(`${name}|${question.type}`) ?? this.failures.get(`${name}|*`);
    if (failure === 'timeout') return 'timeout';
    if (failure === 'servfail') return result('SERVFAIL');
    if (failure === 'refused') return result('REFUSED');
    const zone = this.zoneOf(name);
    if (zone === undefined) return result('REFUSED');

    const answers: Answer[] = [];
    // Follow CNAMEs within our own data, bounded.
    for (let hops = 0; hops < 8; hops++) {
      const types = this.names.get(name);
      const cname = types?.get('CNAME');
      if (cname && question.type !== 'CNAME') {
        const target = normalizeName(String(cname.data[0]));
        answers.push(toAnswer(name, 'CNAME', cname.ttl, target));
        if (!this.names.has(target)) return result('NOERROR', answers);
        name = target;
        continue;
      }
      const set = types?.get(question.type as DnsRecordType);
      if (set) {
        for (const data of set.data) answers.push(toAnswer(name, question.type as DnsRecordType, set.ttl, data));
        return result('NOERROR', answers);
      }
      if (answers.length > 0) return result('NOERROR', answers);
      const exists = types !== undefined || [...this.names.keys()].some((known) => known.endsWith(`.${name}`));
      return result(exists ? 'NOERROR' : 'NXDOMAIN', [], [this.soa(zone)]);
    }
    return result('SERVFAIL');
  }

  private zoneOf(name: string): string | undefined {
    let best: string | undefined;
    for (const zone of this.zones) {
      const inside = zone === '' || name === zone || name.endsWith(`.${zone}`);
      if (inside && (best === undefined || zone.length > best.length)) best = zone;
    }
    return best;
  }

  private soa(zone: string): Answer {
    const suffix = zone === '' ? '' : `.${zone}`;
    return {
      type: 'SOA',
      name: zone === '' ? '.' : zone,
      ttl: 60,
      data: { mname: `ns${suffix}`, rname: `hostmaster${suffix}`, serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: 60 },
    };
  }
}

function result(rcodeName: RcodeName, answers: Answer[] = [], authorities: Answer[] = []): Resolution {
  return { rcode: RCODES[rcodeName], rcodeName, answers, authorities };
}

function toAnswer(name: string, type: DnsRecordType, ttl: number, data: unknown): Answer {
  switch (type) {
    case 'MX': {
      const mx = data as MxRecordData;
      return { type, name, ttl, data: { preference: mx.preference, exchange: mx.exchange === '.' ? '' : normalizeName(mx.exchange) } };
    }
    case 'TXT':
      return { type, name, ttl, data: txtStrings(data as string | string[]) };
    case 'CNAME':
      return { type, name, ttl, data: normalizeName(String(data)) };
    default:
      return { type, name, ttl, data: String(data) };
  }
}

/** TXT character-strings are at most 255 bytes: split longer ones (resolvers join them back). */
function txtStrings(value: string | string[]): Buffer[] {
  const parts = Array.isArray(value) ? value : [value];
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const bytes = Buffer.from(part, 'utf8');
    if (bytes.length === 0) chunks.push(bytes);
    for (let offset = 0; offset < bytes.length; offset += 255) chunks.push(bytes.subarray(offset, offset + 255));
  }
  return chunks;
}
