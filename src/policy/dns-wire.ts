import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import * as dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, Packet, RecordType } from 'dns-packet';

/**
 * A minimal stub-resolver client on the DNS wire, for the one thing Node's resolver cannot do: ask with the
 * DNSSEC OK bit and read the AD bit of the answer (a validating resolver sets it when the answer was proved
 * authentic). UDP first, TCP when the answer comes back truncated; servers in order, each round `tries` times.
 *
 * Answers are only accepted from the server asked (the UDP socket is connected to it), with the random id of
 * the query and the same question: stray or spoofed datagrams are dropped and the wait goes on.
 */

export interface DnsWireServer {
  host: string;
  port: number;
}

export interface DnsWireOptions {
  servers: readonly DnsWireServer[];
  /** How long one server is given to answer one query (ms), over UDP and again over TCP. */
  timeout: number;
  /** Rounds over the servers that did not answer (timeouts, network errors). */
  tries: number;
}

export interface DnsWireResponse {
  /** NOERROR or NXDOMAIN: the answers that end a query. Other rcodes come out as DnsWireError. */
  rcode: 'NOERROR' | 'NXDOMAIN';
  /** The AD bit: the server validated every record in the answer and authority sections. */
  authenticated: boolean;
  answers: Answer[];
  authorities: Answer[];
  transport: 'udp' | 'tcp';
  /** `host:port` of the server that answered. */
  server: string;
}

/** A query that got no usable answer. `code` is Node's for the same failure (ESERVFAIL, EREFUSED, ETIMEOUT, EBADRESP, ...). */
export class DnsWireError extends Error {
  override name = 'DnsWireError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface DnsWireClient {
  query(name: string, type: RecordType): Promise<DnsWireResponse>;
}

/** What EDNS0 advertises as our UDP buffer: the DNS flag day 2020 size, no IP fragmentation. */
const UDP_PAYLOAD_SIZE = 1232;
/** A TCP answer is one 16-bit length-prefixed message; a few stray frames before it are tolerated, no more. */
const MAX_TCP_BYTES = 4 * (65535 + 2);

/** Rcodes that end a query; the others are the server's failure and the next server is asked. */
const FINAL_RCODES = new Set(['NOERROR', 'NXDOMAIN']);
/** Node's codes for the failure rcodes (what dns.promises rejects with). */
const RCODE_ERRORS: Record<string, string> = { SERVFAIL: 'ESERVFAIL', REFUSED: 'EREFUSED', NOTIMP: 'ENOTIMP', FORMERR: 'EFORMERR' };
/** Several failures: the one reported is the most telling (a SERVFAIL says more than a timeout after it). */
const ERROR_RANK = ['ESERVFAIL', 'EREFUSED', 'ENOTIMP', 'EFORMERR', 'EBADRESP', 'ETIMEOUT'];

export function createDnsWireClient(options: DnsWireOptions): DnsWireClient {
  if (options.servers.length === 0) throw new Error('no DNS server to ask');
  const tries = Math.max(1, options.tries);

  async function query(name: string, type: RecordType): Promise<DnsWireResponse> {
    const failures: DnsWireError[] = [];
    // A server that answered (even SERVFAIL) is not asked again: only silence or a network error is retried.
    const answered = new Set<DnsWireServer>();
    for (let round = 0; round < tries; round++) {
      for (const server of options.servers) {
        if (answered.has(server)) continue;
        try {
          const response = await exchange(server, name, type, options.timeout);
          const rcode = (response as DecodedPacket & { rcode?: string }).rcode ?? 'NOERROR';
          if (FINAL_RCODES.has(rcode)) {
            return {
              rcode: rcode as DnsWireResponse['rcode'],
              authenticated: response.flag_ad === true,
              answers: response.answers ?? [],
              authorities: response.authorities ?? [],
              transport: response.transport,
              server: serverLabel(server),
            };
          }
          answered.add(server);
          failures.push(new DnsWireError(RCODE_ERRORS[rcode] ?? 'EBADRESP', `${name} ${type}: ${serverLabel(server)} answered ${rcode}`));
        } catch (err) {
          failures.push(err instanceof DnsWireError ? err : new DnsWireError(errnoCode(err), `${name} ${type}: ${serverLabel(server)}: ${(err as Error).message}`));
        }
      }
      if (answered.size === options.servers.length) break;
    }
    throw mostTelling(failures);
  }

  return { query };
}

function mostTelling(failures: DnsWireError[]): DnsWireError {
  const rank = (e: DnsWireError) => {
    const index = ERROR_RANK.indexOf(e.code);
    return index === -1 ? ERROR_RANK.length : index;
  };
  return failures.reduce((best, e) => (rank(e) < rank(best) ? e : best));
}

function errnoCode(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' ? code : 'EBADRESP';
}

function serverLabel(server: DnsWireServer): string {
  return net.isIPv6(server.host) ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}

type Exchanged = DecodedPacket & { transport: 'udp' | 'tcp' };

/** One query to one server: UDP, then TCP if the UDP answer was truncated. */
async function exchange(server: DnsWireServer, name: string, type: RecordType, timeout: number): Promise<Exchanged> {
  const id = randomInt(0, 65536);
  const packet: Packet = {
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.AUTHENTIC_DATA,
    questions: [{ type, name, class: 'IN' }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: UDP_PAYLOAD_SIZE, flags: dnsPacket.DNSSEC_OK, options: [] } as unknown as Answer],
  };
  const overUdp = await udpExchange(server, dnsPacket.encode(packet), (response) => answersQuery(response, id, name, type), timeout);
  if (!overUdp.flag_tc) return { ...overUdp, transport: 'udp' };
  // A fresh id for the TCP query: an off-path guess of the first one is of no use for the second.
  const tcpId = randomInt(0, 65536);
  const overTcp = await tcpExchange(server, dnsPacket.streamEncode({ ...packet, id: tcpId }), (response) => answersQuery(response, tcpId, name, type), timeout);
  return { ...overTcp, transport: 'tcp' };
}

/** Whether a decoded message is the answer to our query: a response, our id, exactly our question. */
function answersQuery(response: DecodedPacket, id: number, name: string, type: RecordType): boolean {
  if (response.type !== 'response' || response.id !== id) return false;
  const questions = response.questions ?? [];
  if (questions.length !== 1) return false;
  const question = questions[0]!;
  return sameName(question.name, name) && question.type === type && (question.class ?? 'IN') === 'IN';
}

function sameName(a: string, b: string): boolean {
  const strip = (n: string) => n.replace(/\.$/, '').toLowerCase();
  return strip(a) === strip(b);
}

function decodeOrNull(message: Buffer): DecodedPacket | null {
  try {
    return dnsPacket.decode(message);
  } catch {
    return null;
  }
}

function udpExchange(server: DnsWireServer, message: Buffer, accept: (response: DecodedPacket) => boolean, timeout: number): Promise<DecodedPacket> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(net.isIPv6(server.host) ? 'udp6' : 'udp4');
    let done = false;
    let sawMalformed = false;
    const finish = (err: Error | null, response?: DecodedPacket) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        socket.close();
      } catch {
        // already closed
      }
      if (err) reject(err);
      else resolve(response!);
    };
    const timer = setTimeout(
      () => finish(new DnsWireError(sawMalformed ? 'EBADRESP' : 'ETIMEOUT', `${serverLabel(server)} gave no ${sawMalformed ? 'well-formed ' : ''}answer within ${timeout} ms`)),
      timeout,
    );
    socket.on('error', (err) => finish(new DnsWireError(errnoCode(err), `${serverLabel(server)}: ${err.message}`)));
    socket.on('message', (reply) => {
      const response = decodeOrNull(reply);
      if (!response) {
        sawMalformed = true;
        return;
      }
      if (accept(response)) finish(null, response);
    });
    // Connected: the kernel drops datagrams from any other address or port.
    socket.connect(server.port, server.host, () => {
      socket.send(message, (err) => {
        if (err) finish(new DnsWireError(errnoCode(err), `${serverLabel(server)}: ${err.message}`));
      });
    });
  });
}

function tcpExchange(server: DnsWireServer, message: Buffer, accept: (response: DecodedPacket) => boolean, timeout: number): Promise<DecodedPacket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: server.host, port: server.port });
    let done = false;
    let pending = Buffer.alloc(0);
    let received = 0;
    const finish = (err: Error | null, response?: DecodedPacket) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(response!);
    };
    const timer = setTimeout(() => finish(new DnsWireError('ETIMEOUT', `${serverLabel(server)} gave no answer over TCP within ${timeout} ms`)), timeout);
    socket.on('connect', () => socket.write(message));
    socket.on('error', (err) => finish(new DnsWireError(errnoCode(err), `${serverLabel(server)} (TCP): ${err.message}`)));
    socket.on('close', () => finish(new DnsWireError('EBADRESP', `${serverLabel(server)} closed the TCP connection without an answer`)));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > MAX_TCP_BYTES) return finish(new DnsWireError('EBADRESP', `${serverLabel(server)} sent more than one answer's worth over TCP`));
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2) {
        const length = pending.readUInt16BE(0);
        if (pending.length < 2 + length) return;
        const response = decodeOrNull(pending.subarray(2, 2 + length));
        pending = pending.subarray(2 + length);
        if (response && accept(response)) return finish(null, response);
      }
    });
  });
}
