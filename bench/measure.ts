import type { SinkWorld } from './sink-world';
import { now, runLoad, type LoadOptions } from './load';
import type { LegId } from './legs';
import { postfixDeliveries, type RelayUnderTest } from './relays';

/** The figures of one load through one relay. */
export interface RunFigures {
  relay: string;
  /** Which leg of the compare mode (see bench/legs.ts). */
  leg: LegId;
  /** Relay processes that shared the load (Postfix: 1 master and its children). */
  processes: number;
  messages: number;
  accepted: number;
  submitFailures: number;
  arrived: number;
  duplicates: number;
  /** Messages per second between the first submission's start and the last 250. */
  submissionsPerSecond: number;
  /** Messages per second between the first submission's start and the last arrival at a sink. */
  endToEndPerSecond: number;
  /** ms from a submission's 250 to its arrival at the sink. */
  latencyP50: number;
  latencyP95: number;
  latencyP99: number;
  latencyMax: number;
  /** CPU seconds of the relay's process tree per 1,000 messages over the run. */
  cpuPer1000: number;
  /** The same figure in CPU milliseconds per accepted message (relay processes incl. children; Postfix's whole process tree). */
  cpuMsPerMessage: number;
  /** Redis server's CPU ms per message, for the Redis legs (not in cpuMsPerMessage); on a Redis Cluster the sum over every node. */
  storeCpuMsPerMessage?: number;
  /** redis-server processes storeCpuMsPerMessage sums over, when more than one (the cluster legs: masters and replicas). */
  storeServers?: number;
  /** Kernel-mode part of cpuPer1000. */
  systemCpuPer1000: number;
  /** CPU seconds per 1,000 messages of this bench process (load generator and sinks share the machine). */
  harnessCpuPer1000: number;
  /** Peak RSS in bytes: sampled every 200 ms (summed over processes for Postfix); VmHWM when the relay is one process. */
  peakRss: number;
  /** Peak of summed PSS (shared pages split), for multi-process relays. */
  peakPss?: number;
  /** Postfix legs: deliveries its log reports as sent during the run, and how many over a reused connection. */
  deliveriesSent?: number;
  deliveriesOverReusedConnection?: number;
  /** TCP connections the sinks accepted during the run (how well the relay reuses MX connections). */
  sinkConnections: number;
  elapsedSeconds: number;
  /** First submission error, if any (for diagnosis). */
  firstError?: string;
}

const MESSAGE_ID = /^Message-ID:\s*<bench-([^-]+)-(\d+)@/im;
const SAMPLE_MS = 200;

export interface MeasureOptions extends Omit<LoadOptions, 'host' | 'port'> {
  /** How long to wait for the last arrival after the load ends. */
  arrivalTimeoutMs: number;
}

export async function measure(relay: RelayUnderTest, sinks: SinkWorld, options: MeasureOptions): Promise<RunFigures> {
  sinks.world.clearRecords();
  let peakRss = 0;
  let peakPss = 0;
  const sample = (): void => {
    const memory = relay.memory();
    peakRss = Math.max(peakRss, memory.rss);
    peakPss = Math.max(peakPss, memory.pss ?? 0);
  };
  sample();
  const sampler = setInterval(sample, SAMPLE_MS);
  const cpuBefore = relay.cpuSeconds();
  const storeBefore = await relay.storeCpuSeconds?.();
  const logBefore = relay.logText?.().length;
  const harnessBefore = process.cpuUsage();
  try {
    const load = await runLoad({ ...options, host: relay.host, port: relay.port, endpoints: relay.endpoints });
    const expected = load.submissions.length;
    const deadline = Date.now() + options.arrivalTimeoutMs;
    while (sinks.arrivals() < expected && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    // Postfix may still be finishing bookkeeping; the window ends at the last arrival either way.
    const cpuAfter = relay.cpuSeconds();
    const cpu = cpuAfter.total - cpuBefore.total;
    const systemCpu = cpuAfter.system - cpuBefore.system;
    const harness = process.cpuUsage(harnessBefore);
    const storeAfter = await relay.storeCpuSeconds?.();
    const deliveries = logBefore !== undefined ? postfixDeliveries(relay.logText!().slice(logBefore)) : undefined;
    const perMessage = (seconds: number): number => (seconds / Math.max(1, expected)) * 1000;
    sample();

    const accepted = new Map(load.submissions.map((s) => [s.index, s]));
    const arrivedAt = new Map<number, number>();
    let duplicates = 0;
    for (const message of sinks.world.received()) {
      const headerEnd = message.raw.indexOf('\r\n\r\n');
      const match = MESSAGE_ID.exec(message.raw.subarray(0, headerEnd < 0 ? 8192 : headerEnd).toString('latin1'));
      if (!match || match[1] !== options.runId) continue;
      const index = Number(match[2]);
      if (arrivedAt.has(index)) duplicates++;
      else arrivedAt.set(index, message.at.getTime());
    }
    const latencies: number[] = [];
    let lastArrival = load.firstStart;
    for (const [index, at] of arrivedAt) {
      lastArrival = Math.max(lastArrival, at);
      const submission = accepted.get(index);
      if (submission) latencies.push(Math.max(0, at - submission.acceptedAt));
    }
    latencies.sort((a, b) => a - b);
    const kernelPeak = relay.kernelPeakRss();
    return {
      relay: relay.label,
      leg: relay.leg,
      processes: relay.processes,
      messages: options.messages,
      accepted: expected,
      submitFailures: load.failures.length,
      arrived: arrivedAt.size,
      duplicates,
      submissionsPerSecond: expected / ((load.lastAccepted - load.firstStart) / 1000),
      endToEndPerSecond: arrivedAt.size / ((lastArrival - load.firstStart) / 1000),
      latencyP50: percentile(latencies, 0.5),
      latencyP95: percentile(latencies, 0.95),
      latencyP99: percentile(latencies, 0.99),
      latencyMax: latencies[latencies.length - 1] ?? NaN,
      cpuPer1000: perMessage(cpu),
      cpuMsPerMessage: perMessage(cpu),
      ...(storeBefore !== undefined && storeAfter !== undefined ? { storeCpuMsPerMessage: perMessage(storeAfter - storeBefore) } : {}),
      ...(relay.storeServers !== undefined ? { storeServers: relay.storeServers } : {}),
      systemCpuPer1000: perMessage(systemCpu),
      harnessCpuPer1000: ((harness.user + harness.system) / 1e6 / Math.max(1, expected)) * 1000,
      peakRss: kernelPeak ?? peakRss,
      ...(relay.memory().pss !== undefined ? { peakPss } : {}),
      ...(deliveries ? { deliveriesSent: deliveries.sent, deliveriesOverReusedConnection: deliveries.reused } : {}),
      sinkConnections: sinks.world.mxServers.reduce((sum, server) => sum + server.events.filter((event) => event.kind === 'connect').length, 0),
      elapsedSeconds: (now() - load.firstStart) / 1000,
      ...(load.failures[0] ? { firstError: load.failures[0].error } : {}),
    };
  } finally {
    clearInterval(sampler);
  }
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil(p * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}
