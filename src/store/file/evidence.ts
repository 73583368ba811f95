import type { EvidenceAnchor, EvidenceBase, EvidencePruneResult, EvidenceQuery, EvidenceRecord, EvidenceRecordInput } from '../model';
import type { EvidenceLog } from '../roles';
import type { FileStoreOptions } from './spool';

// Placeholder until the file evidence backend lands: every call fails loudly, nothing is faked.
const unbuilt = (): Promise<never> => Promise.reject(new Error('the file evidence log is not built yet'));

export class FileEvidenceLog implements EvidenceLog {
  constructor(_options: FileStoreOptions) {}
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
