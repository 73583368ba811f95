import { z } from 'zod';
import type { FallbackItem, JobRecord, MessageRecord, QuarantineCode } from './model';

/*
 * Schemas every record read from either backend is checked against before use, so a damaged or hand-edited
 * entry is set aside with a reason instead of crashing whoever meets it (a claim, a result, a CLI listing).
 * Objects are loose: fields a newer version adds are kept, only what this code relies on is checked.
 * Reasons name the field and what was wrong, never a value (records hold addresses and header facts).
 */

const time = z.number().finite();
const evidence = z.looseObject({ at: time, outcome: z.enum(['delivered', 'diverted', 'bounced', 'deferred']), reason: z.string() });
const recipient = z.looseObject({
  address: z.string().min(1),
  state: z.enum(['pending', 'delivered', 'diverted', 'bounced']),
  history: z.array(evidence),
  notify: z.array(z.string()).optional(),
  orcpt: z.string().optional(),
  delayWarnedAt: time.optional(),
});

/** A job as stored: never 'leased' (a lease lives beside it), at least one recipient. */
export const jobSchema = z.looseObject({
  id: z.string().min(1),
  messageId: z.string().min(1),
  domain: z.string(),
  state: z.enum(['queued', 'deferred', 'held', 'delivered', 'diverted', 'bounced']),
  recipients: z.array(recipient).min(1),
  dueAt: time,
  attempts: z.number().int().nonnegative(),
  createdAt: time,
  updatedAt: time,
  heldFrom: z.enum(['queued', 'deferred']).optional(),
  lastReason: z.string().optional(),
});

const messageFields = {
  id: z.string().min(1),
  from: z.string(),
  size: z.number().int().nonnegative(),
  receivedAt: time,
  params: z.looseObject({}),
  client: z.looseObject({ ip: z.string(), listener: z.string() }),
  headers: z.looseObject({}),
  bodyRemoved: z.boolean().optional(),
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
};

/** The file store's metadata: the message with its jobs. */
export const messageSchema = z.looseObject({ ...messageFields, jobs: z.array(jobSchema).min(1) });
/** The Redis store's message key: the message without jobs, plus the ids of its job keys. */
export const storedMessageSchema = z.looseObject({ ...messageFields, jobIds: z.array(z.string().min(1)).min(1) });

export const fallbackSchema = z.looseObject({
  id: z.string().min(1),
  queueId: z.string().min(1),
  jobId: z.string().min(1),
  from: z.string(),
  recipient: z.string().min(1),
  reason: z.string(),
  evidence: z.array(evidence),
  divertedAt: time,
});

export type Checked<T> = { ok: true; value: T } | { ok: false; code: QuarantineCode; reason: string };

/**
 * Checks `value` against `schema` and, when given, that its `id` is `id`. The value itself is returned (not a
 * copy), so callers comparing or re-serialising what they read see exactly what was stored.
 */
export function checkRecord<T>(schema: z.ZodType, value: unknown, what: string, id?: string): Checked<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) return { ok: false, code: 'invalid-record', reason: `${what} is damaged: ${describeIssue(parsed.error.issues[0])}` };
  if (id !== undefined && (value as { id?: unknown }).id !== id) return { ok: false, code: 'invalid-record', reason: `${what} is damaged: its id does not match its key` };
  return { ok: true, value: value as T };
}

/** JSON text checked against `schema`; unparsable text is reported as such. */
export function checkJson<T>(schema: z.ZodType, raw: string, what: string, id?: string): Checked<T> {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return { ok: false, code: 'invalid-json', reason: `${what} is not valid JSON` };
  }
  return checkRecord<T>(schema, value, what, id);
}

export const checkJob = (value: unknown, id?: string): Checked<JobRecord> => checkRecord<JobRecord>(jobSchema, value, 'job record', id);
export const checkMessage = (value: unknown, id?: string): Checked<MessageRecord> => checkRecord<MessageRecord>(messageSchema, value, 'message record', id);
export const checkFallback = (value: unknown, id?: string): Checked<FallbackItem> => checkRecord<FallbackItem>(fallbackSchema, value, 'fallback item', id);

function describeIssue(issue: z.core.$ZodIssue | undefined): string {
  if (!issue) return 'unknown problem';
  const where = issue.path.length > 0 ? issue.path.map(String).join('.') : 'record';
  switch (issue.code) {
    case 'invalid_type':
      return `${where}: expected ${issue.expected}`;
    case 'too_small':
      return `${where}: too small or empty`;
    case 'invalid_value':
      return `${where}: not an allowed value`;
    default:
      return `${where}: ${issue.code}`;
  }
}

/**
 * JSON texts that passed their schema check lately, each with the id it was checked against. A record is read
 * several times while it is handled (a message at claim, body open and result; a job at claim and result), mostly
 * unchanged: the same text again is parsed but not checked again. Any other text, a damaged one included, misses
 * and is checked in full. Bounded: the oldest text goes first.
 */
export class CheckedTexts {
  private readonly ids = new Map<string, string>();
  constructor(private readonly max: number) {}

  has(raw: string, id: string): boolean {
    return this.ids.get(raw) === id;
  }

  add(raw: string, id: string): void {
    if (this.ids.has(raw)) return;
    if (this.ids.size >= this.max) this.ids.delete(this.ids.keys().next().value!);
    this.ids.set(raw, id);
  }
}

/** Texts per schema: about as many as there are records in flight, a few hundred KB at most. */
export const CHECKED_TEXTS = 512;

/** `raw` parsed, checked by `check` unless the same text passed it for the same id lately. */
export function checkJsonCached<T>(seen: CheckedTexts, raw: string, id: string | undefined, what: string, check: (value: unknown) => Checked<T>): Checked<T> {
  if (id === undefined || !seen.has(raw, id)) {
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      return { ok: false, code: 'invalid-json', reason: `${what} is not valid JSON` };
    }
    const checked = check(value);
    if (checked.ok && id !== undefined) seen.add(raw, id);
    return checked;
  }
  return { ok: true, value: JSON.parse(raw) as T };
}
