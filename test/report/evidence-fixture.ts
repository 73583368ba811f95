import type { AuditEntry, MxAttemptEvidence, PolicyEvidence, TlsEvidence } from '../../src/evidence/delivery';
import { chainEvidence, evidenceDay, recipientDomain, sealDay } from '../../src/store/evidence-chain';
import type { EvidenceAnchor, EvidenceQuery, EvidenceRecord, EvidenceRecordInput } from '../../src/store/types';
import type { ReportLog } from '../../src/report/build';

/** An in-memory evidence log built with chainEvidence, answering queryEvidence as the role says (every condition holds). */
export class MemoryEvidenceLog implements ReportLog {
  readonly lines = new Map<string, string[]>();
  readonly anchors: EvidenceAnchor[] = [];
  private head: EvidenceRecord | undefined;
  readonly queries: EvidenceQuery[] = [];

  /** Appends a batch logged at `loggedAt`, sealing the earlier days first (as appendEvidence does). */
  append(inputs: EvidenceRecordInput[], loggedAt: number): EvidenceRecord[] {
    const day = evidenceDay(loggedAt);
    for (const open of [...this.lines.keys()].filter((d) => d < day && !this.anchors.some((a) => a.day === d)).sort()) {
      const records = this.lines.get(open)!.map((line) => JSON.parse(line) as EvidenceRecord);
      this.anchors.push(sealDay(records[0]!, records[records.length - 1]!, this.anchors[this.anchors.length - 1]?.hash, loggedAt));
    }
    const records = chainEvidence(this.head, inputs, loggedAt);
    const lines = this.lines.get(day) ?? [];
    lines.push(...records.map((r) => JSON.stringify(r)));
    this.lines.set(day, lines);
    this.head = records[records.length - 1] ?? this.head;
    return records;
  }

  async *queryEvidence(query: EvidenceQuery): AsyncIterable<EvidenceRecord> {
    this.queries.push(query);
    let n = 0;
    for (const day of [...this.lines.keys()].sort()) {
      for (const line of this.lines.get(day)!) {
        const r = JSON.parse(line) as EvidenceRecord;
        if (query.from !== undefined && r.at < query.from) continue;
        if (query.to !== undefined && r.at >= query.to) continue;
        if (query.kinds && !query.kinds.includes(r.kind)) continue;
        if (query.domain !== undefined && (r.recipient === null || recipientDomain(r.recipient) !== query.domain.toLowerCase())) continue;
        if (query.sender !== undefined && (r.sender === null || r.sender.toLowerCase() !== query.sender.toLowerCase())) continue;
        if (query.queueId !== undefined && r.queueId !== query.queueId) continue;
        if (query.limit !== undefined && n >= query.limit) return;
        n++;
        yield r;
      }
    }
  }

  evidenceDays = async (): Promise<string[]> => [...this.lines.keys()].sort();
  readEvidenceDay = async (day: string): Promise<string[]> => this.lines.get(day) ?? [];
  evidenceAnchors = async (): Promise<EvidenceAnchor[]> => this.anchors;
  evidenceBase = async () => null;
  evidenceHead = async (): Promise<EvidenceRecord | undefined> => this.head;
}

export const TLS13: TlsEvidence = { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', group: 'x25519' };
export const TLS12: TlsEvidence = { protocol: 'TLSv1.2', cipher: 'ECDHE-RSA-AES256-GCM-SHA384', group: 'secp256r1' };

export const POLICY = {
  enforce: { source: 'mta-sts', mode: 'enforce', id: 'p1', level: 'verify' },
  testing: { source: 'mta-sts', mode: 'testing', id: 'p2', level: 'encrypt' },
  dane: { source: 'default', mode: null, id: null, level: 'encrypt', dane: 'secure-tlsa' },
  rule: { source: 'domain-rule', mode: null, id: null, level: 'verify' },
  plain: { source: 'default', mode: null, id: null, level: 'encrypt' },
} satisfies Record<string, PolicyEvidence>;

export function attempt(code: string, extra: Partial<MxAttemptEvidence> = {}): MxAttemptEvidence {
  return { mx: 'mx.example', ip: '127.0.0.9', at: 0, class: code === 'compliant' ? 'ok' : 'non-compliant', code, reason: code, starttls: true, tls: null, certificate: null, reply: null, ...extra };
}

export interface OutcomeSpec {
  at: number;
  queueId: string;
  recipient: string;
  sender?: string;
  outcome: AuditEntry['outcome'];
  reason?: string;
  tls?: TlsEvidence | null;
  policy?: PolicyEvidence | null;
  attempts?: MxAttemptEvidence[];
}

/** A 'recipient-outcome' input carrying an AuditEntry, as the delivery engine records it. */
export function outcome(spec: OutcomeSpec): EvidenceRecordInput {
  const entry: AuditEntry = {
    queueId: spec.queueId,
    messageId: `<${spec.queueId}@app.test>`,
    recipient: spec.recipient,
    outcome: spec.outcome,
    reason: spec.reason ?? spec.outcome,
    mx: 'mx.example',
    ip: '127.0.0.9',
    tls: spec.tls ?? null,
    certificate: null,
    policy: spec.policy === undefined ? POLICY.plain : spec.policy,
    reply: null,
    at: new Date(spec.at).toISOString(),
    mxAttempts: spec.attempts ?? [],
  };
  return {
    kind: 'recipient-outcome',
    at: spec.at,
    queueId: spec.queueId,
    messageId: entry.messageId,
    recipient: spec.recipient,
    sender: spec.sender ?? 'app@clinic.test',
    actor: 'relay',
    data: entry as unknown as Record<string, unknown>,
  };
}

export function portalEvent(at: number, itemId: string, type: string, recipient = 'c@legacy.example'): EvidenceRecordInput {
  return {
    kind: 'portal-event',
    at,
    queueId: 'q-portal',
    messageId: null,
    recipient,
    sender: 'app@clinic.test',
    actor: type.startsWith('admin.') ? 'admin:ops' : 'recipient',
    data: { itemId, seq: 1, at, type, actor: 'recipient' },
  };
}

export function adminAction(at: number, action: string, id: string, actor = 'ops'): EvidenceRecordInput {
  return { kind: 'admin-action', at, queueId: id, messageId: null, recipient: null, sender: null, actor: `admin:${actor}`, data: { actor, action, id } };
}
