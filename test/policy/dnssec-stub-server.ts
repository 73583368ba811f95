import dgram from 'node:dgram';
import net from 'node:net';
import * as dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, RecordType } from 'dns-packet';
import { listenBoth } from '../support/world/dns-server';

/**
 * A stand-in for a validating recursive resolver on 127.0.0.1 (UDP and TCP on one port), for the wire client's
 * tests: each name/type is given the answer records, the rcode and whether the AD bit is set, and can be made to
 * misbehave (no answer, truncated over UDP, a stray answer first). Every query is logged with its flags.
 */

export interface StubAnswer {
  rcode?: 'NOERROR' | 'NXDOMAIN' | 'SERVFAIL' | 'REFUSED';
  ad?: boolean;
  answers?: Answer[];
  /** 'drop': never answer. 'truncate': over UDP only a TC answer. 'stray-first': over UDP first a reply with another id and one with another question, then the real one. 'garbage-first': an undecodable datagram first; 'garbage-only': nothing else. */
  behaviour?: 'drop' | 'truncate' | 'stray-first' | 'garbage-first' | 'garbage-only';
}

export interface StubQuery {
  name: string;
  type: string;
  transport: 'udp' | 'tcp';
  id: number;
  dnssecOk: boolean;
  adRequested: boolean;
  recursionDesired: boolean;
}

export interface StubServer {
  address: string;
  port: number;
  queries: StubQuery[];
  set(name: string, type: RecordType, answer: StubAnswer): void;
  close(): Promise<void>;
}

export async function startStubServer(): Promise<StubServer> {
  const table = new Map<string, StubAnswer>();
  const queries: StubQuery[] = [];
  const key = (name: string, type: string) => `${name.replace(/\.$/, '').toLowerCase()} ${type}`;

  const respond = (query: DecodedPacket, transport: 'udp' | 'tcp'): { replies: Buffer[] } => {
    const question = query.questions?.[0];
    if (!question) return { replies: [] };
    const opt = (query.additionals ?? []).find((a) => a.type === 'OPT') as { flags?: number } | undefined;
    queries.push({
      name: question.name.toLowerCase(),
      type: question.type,
      transport,
      id: query.id ?? 0,
      dnssecOk: ((opt?.flags ?? 0) & dnsPacket.DNSSEC_OK) !== 0,
      adRequested: query.flag_ad,
      recursionDesired: query.flag_rd,
    });
    const entry = table.get(key(question.name, question.type)) ?? { rcode: 'NXDOMAIN' };
    if (entry.behaviour === 'drop') return { replies: [] };
    const rcodes = { NOERROR: 0, NXDOMAIN: 3, SERVFAIL: 2, REFUSED: 5 } as const;
    const flags = dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (entry.ad ? dnsPacket.AUTHENTIC_DATA : 0) | rcodes[entry.rcode ?? 'NOERROR'];
    const response = {
      type: 'response' as const,
      id: query.id ?? 0,
      flags,
      questions: [question],
      answers: entry.answers ?? [],
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: dnsPacket.DNSSEC_OK, options: [] } as unknown as Answer],
    };
    if (transport === 'udp' && entry.behaviour === 'truncate') {
      return { replies: [dnsPacket.encode({ ...response, flags: flags | dnsPacket.TRUNCATED_RESPONSE, answers: [] })] };
    }
    const real = dnsPacket.encode(response);
    if (transport === 'udp' && entry.behaviour === 'stray-first') {
      // Same answer under another id, and our id with another question: both must be ignored (poisoned data).
      const poison = [{ type: 'A', name: question.name, ttl: 300, data: '192.0.2.66' } as Answer];
      return {
        replies: [
          dnsPacket.encode({ ...response, id: ((query.id ?? 0) + 1) % 65536, answers: poison, flags: flags | dnsPacket.AUTHENTIC_DATA }),
          dnsPacket.encode({ ...response, questions: [{ ...question, name: `evil.${question.name}` }], answers: poison }),
          real,
        ],
      };
    }
    if (transport === 'udp' && entry.behaviour === 'garbage-first') return { replies: [Buffer.from([1, 2, 3]), real] };
    if (entry.behaviour === 'garbage-only') return { replies: [Buffer.from([1, 2, 3])] };
    return { replies: [real] };
  };

  const sockets = new Set<net.Socket>();
  const onTcpConnection = (socket: net.Socket): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const length = pending.readUInt16BE(0);
        const query = dnsPacket.decode(pending.subarray(2, 2 + length));
        pending = pending.subarray(2 + length);
        for (const reply of respond(query, 'tcp').replies) {
          const frame = Buffer.alloc(2 + reply.length);
          frame.writeUInt16BE(reply.length, 0);
          reply.copy(frame, 2);
          socket.write(frame);
        }
      }
    });
  };
  const onDatagram = (udp: dgram.Socket, message: Buffer, remote: dgram.RemoteInfo): void => {
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(message);
    } catch {
      return;
    }
    for (const reply of respond(query, 'udp').replies) udp.send(reply, remote.port, remote.address);
  };
  // UDP and TCP on one port number, another one when a TCP listener elsewhere holds the number UDP got.
  const { udp, tcp, port } = await listenBoth('127.0.0.1', 0, onDatagram, onTcpConnection);

  return {
    address: `127.0.0.1:${port}`,
    port,
    queries,
    set: (name, type, answer) => void table.set(key(name, type), answer),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await Promise.all([new Promise<void>((resolve) => tcp.close(() => resolve())), new Promise<void>((resolve) => udp.close(() => resolve()))]);
    },
  };
}
