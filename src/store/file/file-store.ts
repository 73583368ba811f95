import { RoleStore, type StoreParts } from '../role-store';
import type { QuarantineStore } from '../roles';
import { FileQueueAdmin } from './admin';
import { FileCache } from './cache';
import { FileEvidenceLog } from './evidence';
import { FileFallbackStore } from './fallback';
import { FilePortalStore } from './portal';
import { FileJobQueue } from './queue';
import { FileRetention } from './retention';
import { FileSpool, type FileStoreOptions } from './spool';
import { FileTlsRptCounters } from './tlsrpt';

export type { FileStoreOptions } from './spool';

type FileParts = StoreParts & { spool: FileSpool; evidence: FileEvidenceLog };

/**
 * The embedded backend as one file per record: every role (queue.ts, admin.ts, fallback.ts, portal.ts, cache.ts,
 * retention.ts, tlsrpt.ts, evidence.ts) over one shared spool core (spool.ts); RoleStore hands each call to its role.
 */
export class FileStore extends RoleStore<FileParts> {
  readonly kind = 'file' as const;

  constructor(options: FileStoreOptions) {
    const spool = new FileSpool(options);
    const quarantine: QuarantineStore = {
      quarantineMessage: (messageId, kind, reason, jobId) => spool.quarantineMessage(messageId, kind, kind === 'result' ? 'result-unrecorded' : 'invalid-record', reason, jobId),
      listQuarantined: async () => (await spool.quarantine.list()).map(({ files: _files, ...entry }) => entry),
      purgeQuarantined: (before) => spool.quarantine.purge(before),
    };
    super({
      spool,
      queue: new FileJobQueue(spool),
      admin: new FileQueueAdmin(spool),
      fallback: new FileFallbackStore(spool),
      portal: new FilePortalStore(spool.layout),
      cache: new FileCache(spool.layout),
      retention: new FileRetention(spool),
      quarantine,
      tlsrpt: new FileTlsRptCounters(spool.layout),
      evidence: new FileEvidenceLog(options),
    });
  }

  open(): Promise<void> {
    return this.parts.spool.open();
  }
  async close(): Promise<void> {
    await this.parts.spool.close();
    await this.parts.evidence.close();
  }
  ping(): Promise<void> {
    return this.parts.spool.ping();
  }
}
