import dgram from 'node:dgram';
import { randomInt } from 'node:crypto';
import * as dnsPacket from 'dns-packet';
import type { Packet, RecordType } from 'dns-packet';

/** One DNS answer as a test sees it: rcode, AD bit and the answer section. */
export interface DnssecAnswer {
  rcode: string;
  ad: boolean;
  answers: NonNullable<Packet['answers']>;
}

/** 'ip:port' → parts. */
export function splitAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at), port: Number(address.slice(at + 1)) };
}

/**
 * One UDP query with RD, AD and the DO bit (as a DNSSEC-aware stub sends it); rejects after
 * `timeoutMs`. Answers with another id are ignored.
 */
export function queryDnssec(server: string, name: string, type: RecordType, timeoutMs = 2_000): Promise<DnssecAnswer> {
  const { host, port } = splitAddress(server);
  const id = randomInt(0, 65_536);
  const query = dnsPacket.encode({
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.AUTHENTIC_DATA,
    questions: [{ type, name, class: 'IN' }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: dnsPacket.DNSSEC_OK, options: [] }],
  } as unknown as Packet);
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    const finish = (error: Error | null, answer?: DnssecAnswer): void => {
      clearTimeout(timer);
      socket.close();
      if (error) reject(error);
      else resolve(answer!);
    };
    const timer = setTimeout(() => finish(new Error(`no answer from ${server} for ${name} ${type} within ${timeoutMs} ms`)), timeoutMs);
    socket.on('error', (error) => finish(error));
    socket.on('message', (message) => {
      let packet: Packet;
      try {
        packet = dnsPacket.decode(message);
      } catch {
        return;
      }
      if (packet.id !== id) return;
      const flags = packet.flags ?? 0;
      finish(null, { rcode: (packet as Packet & { rcode?: string }).rcode ?? 'NOERROR', ad: (flags & dnsPacket.AUTHENTIC_DATA) !== 0, answers: packet.answers ?? [] });
    });
    // A connected socket hears ICMP port-unreachable (ECONNREFUSED) at once: readiness polls need not wait out the timeout.
    socket.connect(port, host, () => socket.send(query));
  });
}
