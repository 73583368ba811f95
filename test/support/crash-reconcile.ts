import type { FallbackItem, MessageRecord } from '../../src/store/types';
import type { Submission } from './crash-load';
import type { ReceivedMessage } from './world';

/**
 * After a crash run: every recipient the relay acknowledged must end in exactly one state (delivered
 * at an MX, diverted to the fallback queue, bounced with a DSN, or still queued); a copy delivered
 * more than once must be explained by a `possible-duplicate` line of the relay.
 */

export interface Duplicate {
  messageId: string;
  recipient: string;
  copies: number;
  queueId: string;
  /** The messages of the relay's possible-duplicate lines for this message; empty = unexplained. */
  causes: string[];
  /** A DSN sent more than once for this (original message, recipient). */
  dsn?: boolean;
  /** When each copy arrived at the MX (epoch ms). */
  arrivals: number[];
  /**
   * No relay kill fell between two of the copies: one relay process sent it twice, which no crash explains
   * (the documented window needs the relay to die between the MX's 250 and its record of it).
   */
  withoutCrash: boolean;
}

export interface Reconciliation {
  acknowledged: number;
  delivered: number;
  diverted: number;
  bounced: number;
  queued: number;
  lost: number;
  /** One line per lost recipient: what the store and the MX said. */
  lostDetails: string[];
  /** A recipient in two states at once (e.g. bounced in the store and delivered at an MX). */
  conflicts: string[];
  duplicates: Duplicate[];
  /** Duplicates without a possible-duplicate line of the relay for their message. */
  unexplainedDuplicates: Duplicate[];
  /** Duplicates sent twice by one relay process, no kill between the copies. */
  duplicatesWithoutCrash: Duplicate[];
  /** Submissions the relay did not acknowledge (refused or connection lost before 250). */
  unacked: { submissions: number; recipients: number; stored: number; arrived: number };
}

export interface ReconcileInput {
  submissions: Submission[];
  /** Every message record in the store (after the drain). */
  messages: MessageRecord[];
  fallback: FallbackItem[];
  /** Every message accepted by any test-world MX. */
  received: ReceivedMessage[];
  /** JSON log lines of every relay process of the run. */
  logs: Array<Record<string, unknown>>;
  /** The envelope sender's mailbox host (where DSNs arrive). */
  dsnMailbox: string;
  /** When the relay was killed (epoch ms, taken just before the signal). */
  kills: number[];
}

function headerSection(raw: Buffer): string {
  const text = raw.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  return end < 0 ? text : text.slice(0, end);
}

export function messageIdOf(raw: Buffer): string | undefined {
  const match = /^Message-ID:\s*<([^>\r\n]+)>/im.exec(headerSection(raw));
  return match?.[1];
}

const key = (messageId: string, recipient: string): string => `${messageId} ${recipient.toLowerCase()}`;

/** One copy at an MX: when it arrived, and when its DATA began (a relay killed after that may still have sent it). */
interface Copy {
  at: number;
  dataStartedAt: number;
}

function count(map: Map<string, Copy[]>, k: string, message: Pick<ReceivedMessage, 'at' | 'dataStartedAt'>): void {
  map.set(k, [...(map.get(k) ?? []), { at: message.at.getTime(), dataStartedAt: message.dataStartedAt.getTime() }]);
}

export function reconcile(input: ReconcileInput): Reconciliation {
  const byQueueId = new Map(input.messages.map((m) => [m.id, m]));
  const byMessageId = new Map<string, MessageRecord>();
  for (const m of input.messages) if (m.headers.messageId) byMessageId.set(m.headers.messageId.replace(/^<|>$/g, ''), m);

  // Copies at the MX hosts per (Message-ID, recipient), and DSNs per (original Message-ID, recipient).
  const copies = new Map<string, Copy[]>();
  const dsns = new Map<string, Copy[]>();
  /** (original Message-ID, recipient) → queue ids of the DSN messages reporting it. */
  const dsnQueueIds = new Map<string, Set<string>>();
  for (const message of input.received) {
    const id = messageIdOf(message.raw);
    if (message.mx === input.dsnMailbox && message.mailFrom === '') {
      const text = message.raw.toString('latin1');
      const originals = new Set([...text.matchAll(/<(crash-[^>\s]+@sender\.test)>/g)].map((m) => m[1]!));
      const finals = [...text.matchAll(/Final-Recipient:\s*rfc822;\s*(\S+)/gi)].map((m) => m[1]!);
      const dsnQueueId = id ? byMessageId.get(id)?.id : undefined;
      for (const original of originals) {
        for (const recipient of finals) {
          count(dsns, key(original, recipient), message);
          if (dsnQueueId) dsnQueueIds.set(key(original, recipient), new Set([...(dsnQueueIds.get(key(original, recipient)) ?? []), dsnQueueId]));
        }
      }
      continue;
    }
    if (!id) continue;
    for (const rcpt of message.rcptTo) count(copies, key(id, rcpt), message);
  }

  // The relay's dsn-queued lines name each DSN's own queue id (a DSN message sent twice is flagged under that id).
  const dsnsQueuedFor = new Map<string, string[]>();
  for (const l of input.logs) {
    if (l.event === 'dsn-queued' && typeof l.queueId === 'string' && typeof l.dsnQueueId === 'string') {
      dsnsQueuedFor.set(l.queueId, [...(dsnsQueuedFor.get(l.queueId) ?? []), l.dsnQueueId]);
    }
  }

  const causesFor = (queueId: string): string[] =>
    input.logs
      .filter((l) => l.event === 'possible-duplicate')
      .filter((l) => l.queueId === queueId || (typeof l.jobId === 'string' && l.jobId.startsWith(`${queueId}/`)))
      .map((l) => `${typeof l.msg === 'string' ? l.msg : 'possible-duplicate'} (${typeof l.jobId === 'string' ? l.jobId : queueId})`)
      .filter((cause, i, all) => all.indexOf(cause) === i);

  const result: Reconciliation = {
    acknowledged: 0,
    delivered: 0,
    diverted: 0,
    bounced: 0,
    queued: 0,
    lost: 0,
    lostDetails: [],
    conflicts: [],
    duplicates: [],
    unexplainedDuplicates: [],
    duplicatesWithoutCrash: [],
    unacked: { submissions: 0, recipients: 0, stored: 0, arrived: 0 },
  };

  for (const submission of input.submissions) {
    if (submission.result !== 'acked') {
      result.unacked.submissions++;
      result.unacked.recipients += submission.recipients.length;
      if (byMessageId.has(submission.messageId)) result.unacked.stored++;
      if (submission.recipients.some((r) => copies.has(key(submission.messageId, r)))) result.unacked.arrived++;
      continue;
    }
    const record = byQueueId.get(submission.queueId!);
    for (const recipient of submission.recipients) {
      result.acknowledged++;
      const k = key(submission.messageId, recipient);
      const atMx = copies.get(k)?.length ?? 0;
      const dsnCount = dsns.get(k)?.length ?? 0;
      const stored = record?.jobs.flatMap((j) => j.recipients).find((r) => r.address.toLowerCase() === recipient.toLowerCase());
      const diverts = input.fallback.filter((f) => f.queueId === submission.queueId && f.recipient.toLowerCase() === recipient.toLowerCase());
      const where = `${recipient} of ${submission.messageId} (queue id ${submission.queueId}): store ${stored?.state ?? 'missing'}, ${atMx} at MX, ${dsnCount} DSN, ${diverts.length} fallback item(s)`;

      for (const [arrivals, dsn] of [
        [copies.get(k) ?? [], false],
        [dsns.get(k) ?? [], true],
      ] as const) {
        if (arrivals.length < 2) continue;
        const sorted = [...arrivals].sort((a, b) => a.at - b.at);
        // A DSN's arrival says nothing about when it was generated (a DSN queued by a relay that was then killed
        // is delivered by the next one), so only direct copies are timed against the kills. A kill explains two
        // copies when it fell after the first one's DATA began (the test MX may take in a dead relay's last bytes
        // after the kill) and before the second one arrived.
        const withoutCrash = !dsn && sorted.slice(1).some((copy, i) => !input.kills.some((kill) => kill > sorted[i]!.dataStartedAt && kill < copy.at));
        const duplicate: Duplicate = {
          messageId: submission.messageId,
          recipient,
          copies: sorted.length,
          queueId: submission.queueId!,
          // A DSN twice: the bounce was recorded twice (the original's job), or one DSN message was sent twice.
          causes: [submission.queueId!, ...(dsn ? [...(dsnQueueIds.get(k) ?? []), ...(dsnsQueuedFor.get(submission.queueId!) ?? [])] : [])]
            .flatMap(causesFor)
            .filter((cause, i, all) => all.indexOf(cause) === i),
          arrivals: sorted.map((c) => c.at),
          withoutCrash,
          ...(dsn ? { dsn } : {}),
        };
        result.duplicates.push(duplicate);
        if (duplicate.causes.length === 0) result.unexplainedDuplicates.push(duplicate);
        if (withoutCrash) result.duplicatesWithoutCrash.push(duplicate);
      }

      const states = [atMx > 0 && 'delivered', dsnCount > 0 && 'bounced', diverts.length > 0 && 'diverted'].filter(Boolean);
      if (states.length > 1) result.conflicts.push(`in ${states.join(' and ')}: ${where}`);

      switch (stored?.state) {
        case 'delivered':
          if (atMx > 0) result.delivered++;
          else lose(result, `recorded delivered but never arrived: ${where}`);
          break;
        case 'diverted':
          if (diverts.length > 0) result.diverted++;
          else lose(result, `recorded diverted without a fallback item: ${where}`);
          break;
        case 'bounced':
          if (dsnCount > 0) result.bounced++;
          else lose(result, `recorded bounced without a DSN at the sender: ${where}`);
          break;
        case 'pending':
          result.queued++;
          if (atMx > 0 || dsnCount > 0 || diverts.length > 0) result.conflicts.push(`still queued but already ended: ${where}`);
          break;
        default:
          lose(result, `acknowledged but not in the store: ${where}`);
      }
    }
  }
  return result;
}

function lose(result: Reconciliation, detail: string): void {
  result.lost++;
  result.lostDetails.push(detail);
}

/** The one-line figures a crash run prints per store. */
export function summaryLine(label: string, kills: number, r: Reconciliation): string {
  const duplicates = r.duplicates
    .map((d) => {
      const gaps = d.arrivals.slice(1).map((at, i) => `${at - d.arrivals[i]!} ms`);
      const crash = d.dsn ? 'DSN generated again' : d.withoutCrash ? 'NO kill between copies' : 'kill between copies';
      return `${d.dsn ? 'DSN ' : ''}${d.recipient} of ${d.messageId} x${d.copies} ${gaps.join('/')} apart, ${crash} [${d.causes.join('; ') || 'NO possible-duplicate line'}]`;
    })
    .join(', ');
  return (
    `${label}: kills=${kills} acknowledged=${r.acknowledged} delivered=${r.delivered} diverted=${r.diverted} bounced=${r.bounced} ` +
    `queued=${r.queued} lost=${r.lost} duplicates=${r.duplicates.length}${duplicates ? ` (${duplicates})` : ''} unexplained=${r.unexplainedDuplicates.length} withoutCrash=${r.duplicatesWithoutCrash.length} conflicts=${r.conflicts.length} ` +
    `unacknowledged=${r.unacked.submissions} submissions/${r.unacked.recipients} recipients (stored anyway ${r.unacked.stored}, arrived ${r.unacked.arrived})`
  );
}
