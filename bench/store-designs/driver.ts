import type { Readable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import type { HotPathStore } from './design';
import { bodyStream, deliveredResult, messageBody, newMessage, outcomeRecords } from './workload';

/**
 * Drives one design's hot path in this process: C workers, each taking the next message number until M are done,
 * and for each: enqueue (what the `250` waits for), claim a due job, read its body through, append the outcome's
 * evidence, record the result (the scheduler's order: evidence before the result). No sockets, no delivery.
 */

export interface DriveOptions {
  messages: number;
  connections: number;
  size: number;
  owner?: string;
}

/** What one run measured, raw. */
export interface RunSample {
  messages: number;
  wallMs: number;
  cpu: NodeJS.CpuUsage;
  /** Enqueue durations (ms), one per message: how long the client waits for its `250`. */
  acceptMs: number[];
  peakRss: number;
  bodyBytesRead: number;
}

export interface DesignFigures {
  design: string;
  messages: number;
  perSecond: number;
  cpuMsPerMessage: number;
  userMsPerMessage: number;
  systemMsPerMessage: number;
  /** The store server's own CPU (Redis), when it has one. */
  serverCpuMsPerMessage?: number;
  acceptP50Ms: number;
  acceptP99Ms: number;
  peakRssMb: number;
  /** fdatasync calls per message, where the design counts its own (the journal). */
  syncsPerMessage?: number;
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function summarize(design: string, sample: RunSample, serverCpuSeconds?: number): DesignFigures {
  const per = (microseconds: number): number => microseconds / 1000 / sample.messages;
  return {
    design,
    messages: sample.messages,
    perSecond: sample.messages / (sample.wallMs / 1000),
    cpuMsPerMessage: per(sample.cpu.user + sample.cpu.system),
    userMsPerMessage: per(sample.cpu.user),
    systemMsPerMessage: per(sample.cpu.system),
    ...(serverCpuSeconds !== undefined ? { serverCpuMsPerMessage: (serverCpuSeconds * 1000) / sample.messages } : {}),
    acceptP50Ms: percentile(sample.acceptMs, 50),
    acceptP99Ms: percentile(sample.acceptMs, 99),
    peakRssMb: sample.peakRss / 1024 ** 2,
  };
}

export async function drainBody(body: Readable): Promise<number> {
  let bytes = 0;
  for await (const chunk of body) bytes += (chunk as Buffer).length;
  return bytes;
}

/** One message through the whole hot path; returns the enqueue duration (ms). */
async function oneMessage(store: HotPathStore, index: number, body: Buffer, owner: string, read: { bytes: number }): Promise<number> {
  const { message, headers } = newMessage(index);
  const started = performance.now();
  await store.enqueue(message, bodyStream(body), headers);
  const accepted = performance.now() - started;
  let claimed = await store.claimOne(owner);
  // Another worker may have taken this message's job; one of the others is due then (or soon: its enqueue runs).
  while (!claimed) {
    await tick();
    claimed = await store.claimOne(owner);
  }
  read.bytes += await drainBody(await store.openBody(claimed.message.id));
  const result = deliveredResult(claimed);
  await store.appendEvidence(outcomeRecords(claimed, result));
  await store.completeJob(claimed.job.id, owner, result);
  return accepted;
}

export async function drive(store: HotPathStore, options: DriveOptions): Promise<RunSample> {
  const body = messageBody(options.size);
  const owner = options.owner ?? 'bench';
  const acceptMs: number[] = [];
  const read = { bytes: 0 };
  let next = 0;
  let peakRss = process.memoryUsage.rss();
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 50);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  try {
    await Promise.all(
      Array.from({ length: options.connections }, async () => {
        while (next < options.messages) acceptMs.push(await oneMessage(store, next++, body, owner, read));
      }),
    );
  } finally {
    clearInterval(sampler);
  }
  const wallMs = performance.now() - started;
  return { messages: options.messages, wallMs, cpu: process.cpuUsage(cpuBefore), acceptMs, peakRss: Math.max(peakRss, process.memoryUsage.rss()), bodyBytesRead: read.bytes };
}

export interface LargeFigures {
  design: string;
  size: number;
  acceptMs: number;
  readMs: number;
  /** RSS growth over the RSS before the message, at its highest while it was stored and read. */
  rssGrowthMb: number;
}

/** One big message: enqueue, claim, read it through; RSS sampled every 20 ms. */
export async function largeMessage(design: string, store: HotPathStore, size: number): Promise<LargeFigures> {
  const body = messageBody(size, 1);
  const base = process.memoryUsage.rss();
  let peak = base;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
  try {
    const { message, headers } = newMessage(1);
    let at = performance.now();
    await store.enqueue(message, bodyStream(body), headers);
    const acceptMs = performance.now() - at;
    at = performance.now();
    const claimed = await store.claimOne('bench-large');
    if (!claimed) throw new Error(`${design}: the large message was not due`);
    const bytes = await drainBody(await store.openBody(claimed.message.id));
    if (bytes !== size) throw new Error(`${design}: read ${bytes} of ${size} bytes back`);
    const readMs = performance.now() - at;
    const result = deliveredResult(claimed);
    await store.appendEvidence(outcomeRecords(claimed, result));
    await store.completeJob(claimed.job.id, 'bench-large', result);
    return { design, size, acceptMs, readMs, rssGrowthMb: (Math.max(peak, process.memoryUsage.rss()) - base) / 1024 ** 2 };
  } finally {
    clearInterval(sampler);
  }
}
