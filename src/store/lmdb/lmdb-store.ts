import { FileCache } from '../file/cache';
import { FileEvidenceLog } from '../file/evidence';
import { FilePortalStore } from '../file/portal';
import { FileTlsRptCounters } from '../file/tlsrpt';
import { RoleStore, type StoreParts } from '../role-store';
import type { QuarantineStore } from '../roles';
import { LmdbQueueAdmin } from './admin';
import { LmdbFallbackStore } from './fallback';
import { hasFileSpool, migrateFileSpool } from './migrate-file-spool';
import { LmdbJobQueue } from './queue';
import { LmdbRetention } from './retention';
import { LmdbSpool, type LmdbStoreOptions } from './spool';

export type { LmdbStoreOptions } from './spool';

type LmdbParts = StoreParts & { spool: LmdbSpool; queue: LmdbJobQueue; evidence: FileEvidenceLog };

/**
 * The embedded backend on LMDB: queue, admin, fallback, retention and quarantine over one LMDB environment
 * (spool.ts, env.ts) in `<queue.path>/lmdb/`; portal copies, cache and TLS-RPT counters are the file store's,
 * over the same spool folder; the evidence log is the file store's, at evidence.path. RoleStore hands each call
 * to the role that implements it.
 */
export class LmdbStore extends RoleStore<LmdbParts> {
  readonly kind = 'lmdb' as const;

  constructor(private readonly options: LmdbStoreOptions) {
    const spool = new LmdbSpool(options);
    const quarantine: QuarantineStore = {
      quarantineMessage: (messageId, kind, reason, jobId) => spool.quarantineMessage(messageId, kind, kind === 'result' ? 'result-unrecorded' : 'invalid-record', reason, jobId),
      listQuarantined: async () => spool.quarantine.list(),
      purgeQuarantined: (before) => spool.quarantine.purge(before),
    };
    super({
      spool,
      queue: new LmdbJobQueue(spool),
      admin: new LmdbQueueAdmin(spool),
      fallback: new LmdbFallbackStore(spool),
      portal: new FilePortalStore(spool.layout),
      cache: new FileCache(spool.layout),
      retention: new LmdbRetention(spool),
      quarantine,
      tlsrpt: new FileTlsRptCounters(spool.layout),
      evidence: new FileEvidenceLog(options),
    });
  }

  /**
   * Opens the environment; when this process may clean (the relay, or any process while no relay runs) and the
   * folder still holds a file spool (the embedded store before lmdb), its messages are moved in first.
   */
  async open(): Promise<void> {
    const { spool, queue } = this.parts;
    await spool.open();
    if (!spool.mayClean || !(await hasFileSpool(this.options.path))) return;
    const moved = await migrateFileSpool(this.options, queue);
    spool.logger.info({ event: 'file-spool-migrated', ...moved }, 'messages of the file spool moved into the lmdb store');
  }
  async close(): Promise<void> {
    await this.parts.spool.close();
    await this.parts.evidence.close();
  }
  ping(): Promise<void> {
    return this.parts.spool.ping();
  }
}
