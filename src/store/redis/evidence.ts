import type { EvidenceAnchor, EvidenceBase, EvidencePruneResult, EvidenceQuery, EvidenceRecord, EvidenceRecordInput } from '../model';
import type { EvidenceLog } from '../roles';
import type { RedisCore } from './core';

// Placeholder until the redis evidence backend lands: every call fails loudly, nothing is faked.
const unbuilt = (): Promise<never> => Promise.reject(new Error('the redis evidence log is not built yet'));

export class RedisEvidenceLog implements EvidenceLog {
  constructor(_core: RedisCore) {}
  appendEvidence(_records: readonly EvidenceRecordInput[]): Promise<EvidenceRecord[]> {
    return unbuilt();
  }
  queryEvidence(_query: EvidenceQuery): AsyncIterable<EvidenceRecord> {
    return { [Symbol.asyncIterator]: () => ({ next: unbuilt }) };
  }
  evidenceDays(): Promise<string[]> {
    return unbuilt();
  }
  readEvidenceDay(_day: string): Promise<string[]> {
    return unbuilt();
  }
  evidenceAnchors(): Promise<EvidenceAnchor[]> {
    return unbuilt();
  }
  evidenceBase(): Promise<EvidenceBase | null> {
    return unbuilt();
  }
  evidenceHead(): Promise<EvidenceRecord | undefined> {
    return unbuilt();
  }
  sealEvidence(_now?: number): Promise<EvidenceAnchor[]> {
    return unbuilt();
  }
  pruneEvidence(_beforeDay: string): Promise<EvidencePruneResult> {
    return unbuilt();
  }
}
