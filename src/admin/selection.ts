import type { FastifyContextConfig } from 'fastify';
import { parseAdminDuration } from './durations';
import type { JobRecord, JobScope, JobState, MessageFilter, MessageRecord } from '../store/types';

/**
 * Which messages a bulk admin action (`sealgate queue hold --domain D`, POST /api/v1/queue/actions/hold) acts
 * on. The criteria combine with AND; `all` stands for "no criterion" and must be said explicitly, so an
 * empty selection never means "everything" by accident.
 */
export interface Selection {
  domain?: string;
  state?: JobState;
  sender?: string;
  recipient?: string;
  /** Received at least this long ago (ms). */
  olderThan?: number;
  all?: boolean;
}

export type BulkAction = 'hold' | 'release' | 'retry' | 'delete';

/** True when the selection says nothing (no criterion and no `all`): a usage error for bulk actions. */
export function isEmptySelection(selection: Selection): boolean {
  return (
    selection.all !== true &&
    selection.domain === undefined &&
    selection.state === undefined &&
    selection.sender === undefined &&
    selection.recipient === undefined &&
    selection.olderThan === undefined
  );
}

/** The store query for a selection: metadata only (never bodies), on either backend. */
export function selectionFilter(selection: Selection): MessageFilter {
  const filter: MessageFilter = {};
  if (selection.domain !== undefined) filter.domain = selection.domain.toLowerCase();
  if (selection.state !== undefined) filter.state = selection.state;
  if (selection.sender !== undefined) filter.sender = selection.sender;
  if (selection.recipient !== undefined) filter.recipient = selection.recipient;
  if (selection.olderThan !== undefined) filter.olderThan = selection.olderThan;
  return filter;
}

/** The jobs an action touches: with a domain, only that domain's jobs (a message may have several). */
export function selectionScope(selection: Selection): JobScope {
  return selection.domain === undefined ? {} : { domain: selection.domain.toLowerCase() };
}

/** "of partner.example, deferred, older than 2h" for prompts and messages; "(all)" for --all. */
export function describeSelection(selection: Selection): string {
  const parts: string[] = [];
  if (selection.domain !== undefined) parts.push(`of ${selection.domain.toLowerCase()}`);
  if (selection.state !== undefined) parts.push(`in state ${selection.state}`);
  if (selection.sender !== undefined) parts.push(`from ${selection.sender}`);
  if (selection.recipient !== undefined) parts.push(`to ${selection.recipient}`);
  if (selection.olderThan !== undefined) parts.push(`older than ${describeAge(selection.olderThan)}`);
  return parts.length === 0 ? '(all)' : parts.join(', ');
}

function describeAge(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${Math.round(ms / 1000)}s`;
}

/** The selection as JSON for the audit trail and API answers (ages in ms, only the criteria given). */
export function selectionView(selection: Selection): Record<string, string | number | boolean> {
  const view: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(selectionFilter(selection))) view[key] = value as string | number;
  if (selection.all === true) view.all = true;
  return view;
}

/** Apply the action to this message, or skip it with a reason an operator can act on. */
export type Plan = { apply: true } | { apply: false; reason: string };

const WAITING: ReadonlySet<JobState> = new Set(['queued', 'deferred']);

function leaseNote(jobs: JobRecord[]): string {
  const owners = [...new Set(jobs.map((j) => j.lease?.owner).filter((o): o is string => o !== undefined))];
  return owners.length > 0 ? ` (leased by ${owners.join(', ')})` : '';
}

/**
 * Decides, from the message as listed (leases shown as state 'leased'), whether a bulk action applies to it.
 * A message being delivered right now (a job leased by a worker) is skipped by delete and retry: deleting under
 * a worker loses the outcome of an attempt that may already have reached the server, and a retry changes
 * nothing while the attempt runs. Hold applies (the attempt under way completes, what is left stays held).
 */
export function planAction(action: BulkAction, message: MessageRecord, selection: Selection): Plan {
  if (message.deletedAt !== undefined) return { apply: false, reason: 'deleted (only its delivery evidence is kept)' };
  const scope = selectionScope(selection);
  const jobs = message.jobs.filter((j) => scope.domain === undefined || j.domain === scope.domain);
  const leased = jobs.filter((j) => j.state === 'leased');
  const states = [...new Set(jobs.map((j) => j.state))].join(', ') || 'empty';
  switch (action) {
    case 'hold':
      if (jobs.some((j) => WAITING.has(j.state) || j.state === 'leased')) return { apply: true };
      return { apply: false, reason: `nothing waiting to hold (${states})` };
    case 'release':
      if (jobs.some((j) => j.state === 'held')) return { apply: true };
      return { apply: false, reason: `nothing held to release (${states})` };
    case 'retry':
      if (jobs.some((j) => WAITING.has(j.state) || j.state === 'held')) return { apply: true };
      if (leased.length > 0) return { apply: false, reason: `being delivered right now${leaseNote(leased)}` };
      return { apply: false, reason: `nothing left to retry (${states})` };
    case 'delete':
      if (message.jobs.some((j) => j.state === 'leased')) return { apply: false, reason: `being delivered right now${leaseNote(message.jobs)}; try again in a moment` };
      return { apply: true };
  }
}

/**
 * A route's `config` naming the token scope it needs (`read` for lists and search, `operate` for actions), which the
 * admin server checks before the handler runs.
 */
export function routeScope(scope: 'read' | 'operate'): FastifyContextConfig {
  return { scope };
}

/** `since` in a request: an ISO 8601 time, or an age ("2h": within the last two hours); undefined when neither. */
export function parseSinceValue(value: string, now = Date.now()): number | undefined {
  const age = parseAdminDuration(value);
  if (age !== undefined) return now - age;
  const at = Date.parse(value);
  return Number.isFinite(at) ? at : undefined;
}
