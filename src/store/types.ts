/** The store's public face: its data model (model.ts), role interfaces (roles.ts) and typed errors (errors.ts). */
import type { EvidenceLog, FallbackStore, JobQueue, KeyValueCache, PortalStore, QuarantineStore, QueueAdmin, Retention, StoreLifecycle, TlsRptCounters } from './roles';

export * from './model';
export * from './errors';
export type { EvidenceLog, FallbackStore, JobQueue, KeyValueCache, PortalStore, QuarantineStore, QueueAdmin, Retention, StoreLifecycle, TlsRptCounters, TlsRptTally } from './roles';
export { TLSRPT_DAY } from './roles';

/**
 * Everything a backend offers: the union of the role interfaces (roles.ts). Consumers that need only one
 * role should ask for that role; relay.ts and the CLI hold the whole store.
 */
export interface Store extends StoreLifecycle, JobQueue, QueueAdmin, FallbackStore, PortalStore, KeyValueCache, Retention, QuarantineStore, TlsRptCounters, EvidenceLog {}
