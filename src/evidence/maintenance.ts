import { evidenceDay } from '../store/evidence-chain';
import { parseEvidenceDay } from './dates';
import type { EvidencePruneResult, EvidenceRecord } from '../store/model';
import type { EvidenceLog } from '../store/roles';

/*
 * The evidence log's own upkeep, shared by `sealgate evidence prune` and POST /evidence/prune: removing old days
 * is refused inside the retention period and is itself recorded in the log it shortens.
 */

/** A prune the retention forbids, or a date that is not a day. */
export class EvidencePruneRefused extends Error {
  override name = 'EvidencePruneRefused';
}

/** The latest `before` a prune may use: the day holding now − retention (only days wholly older go). */
export function latestPruneDay(now: number, retention: number): string {
  return evidenceDay(now - retention);
}

export interface EvidencePruneOutcome extends EvidencePruneResult {
  before: string;
  /** The 'evidence-pruned' record written after the removal (absent when nothing was removed). */
  recorded: EvidenceRecord | null;
}

/**
 * Removes the whole days before `before` (never younger than the retention), then appends an 'evidence-pruned'
 * record naming the days, the record count and each removed day's anchor (so the removal itself is chained).
 */
export async function pruneEvidenceLog(
  log: Pick<EvidenceLog, 'pruneEvidence' | 'appendEvidence'>,
  request: { before: string; actor: string; retention: number; now?: number },
): Promise<EvidencePruneOutcome> {
  const before = parseEvidenceDay(request.before);
  if (before === undefined) throw new EvidencePruneRefused(`not a day (YYYY-MM-DD): ${request.before}`);
  const now = request.now ?? Date.now();
  const latest = latestPruneDay(now, request.retention);
  if (before > latest) {
    throw new EvidencePruneRefused(
      `refusing to prune before ${before}: evidence is kept for evidence.retention (${Math.round(request.retention / 86_400_000)} days), so the latest allowed date is ${latest}`,
    );
  }
  const result = await log.pruneEvidence(before);
  if (result.days.length === 0) return { before, ...result, recorded: null };
  const [recorded] = await log.appendEvidence([
    {
      kind: 'evidence-pruned',
      at: now,
      queueId: null,
      messageId: null,
      recipient: null,
      sender: null,
      actor: request.actor,
      data: {
        before,
        days: result.days,
        records: result.records,
        anchors: result.anchors.map((a) => ({ day: a.day, lastSeq: a.lastSeq, lastHash: a.lastHash, hash: a.hash })),
      },
    },
  ]);
  return { before, ...result, recorded: recorded ?? null };
}
