import { createHash } from 'node:crypto';
import path from 'node:path';

/**
 * Where everything lives in the embedded spool:
 *   bodies/<id>          message body, byte for byte
 *   meta/<id>.json       MessageRecord with its jobs (the truth for state)
 *   fallback/<id>.json   FallbackItem (ids start with the message id)
 *   cache/<hash>.json    cache entries (disposable)
 *   portal/items/<id>.json    PortalItem (no content in clear; see model.ts)
 *   portal/blobs/<id>         the copy's ciphertext (chunked AES-256-GCM)
 *   portal/tokens/<hash>      the id of the item whose live link token hashes to <hash>
 *   portal/events/<id>.jsonl  the item's hash-chained audit trail, one event per line, append-only
 *   locks/<id>.lock      per-message lock shared by the relay and the admin CLI (portal.<id>.lock: per portal item)
 *   tmp/                 files being written; renamed into place when complete
 *   quarantine/          damaged entries set aside (at open, or when a read meets one)
 *   quarantine.jsonl     why and when each quarantined entry was set aside (ids and reasons, no content)
 *   inflight/<job id>    empty marker while a claimed job's result is unrecorded (possible duplicates after a crash)
 *   tlsrpt/<day>.jsonl  TLS-RPT session counts of one UTC day, one increment per line, added up on read
 *   relay.pid            the spool lock of the one relay using it
 */
export class SpoolLayout {
  readonly bodies: string;
  readonly meta: string;
  readonly fallback: string;
  readonly cache: string;
  readonly locks: string;
  readonly tmp: string;
  readonly quarantine: string;
  readonly quarantineIndex: string;
  readonly portal: string;
  readonly portalItems: string;
  readonly portalBlobs: string;
  readonly portalTokens: string;
  readonly portalEvents: string;
  readonly tlsrpt: string;

  constructor(readonly root: string) {
    this.bodies = path.join(root, 'bodies');
    this.meta = path.join(root, 'meta');
    this.fallback = path.join(root, 'fallback');
    this.cache = path.join(root, 'cache');
    this.locks = path.join(root, 'locks');
    this.tmp = path.join(root, 'tmp');
    this.quarantine = path.join(root, 'quarantine');
    this.quarantineIndex = path.join(root, 'quarantine.jsonl');
    this.portal = path.join(root, 'portal');
    this.portalItems = path.join(this.portal, 'items');
    this.portalBlobs = path.join(this.portal, 'blobs');
    this.portalTokens = path.join(this.portal, 'tokens');
    this.portalEvents = path.join(this.portal, 'events');
    this.tlsrpt = path.join(root, 'tlsrpt');
  }

  folders(): string[] {
    return [
      this.bodies,
      this.meta,
      this.fallback,
      this.cache,
      this.locks,
      this.tmp,
      this.quarantine,
      this.portal,
      this.portalItems,
      this.portalBlobs,
      this.portalTokens,
      this.portalEvents,
      this.tlsrpt,
    ];
  }

  bodyFile(id: string): string {
    return path.join(this.bodies, id);
  }

  metaFile(id: string): string {
    return path.join(this.meta, `${id}.json`);
  }

  fallbackFile(id: string): string {
    return path.join(this.fallback, `${id}.json`);
  }

  lockFile(messageId: string): string {
    return path.join(this.locks, `${messageId}.lock`);
  }

  portalItemFile(id: string): string {
    return path.join(this.portalItems, `${id}.json`);
  }

  portalBlobFile(id: string): string {
    return path.join(this.portalBlobs, id);
  }

  portalTokenFile(tokenHash: string): string {
    return path.join(this.portalTokens, tokenHash);
  }

  portalEventsFile(id: string): string {
    return path.join(this.portalEvents, `${id}.jsonl`);
  }

  portalLockFile(id: string): string {
    return path.join(this.locks, `portal.${id}.lock`);
  }

  tlsRptDayFile(day: string): string {
    return path.join(this.tlsrpt, `${day}.jsonl`);
  }

  cacheLockFile(namespace: string, key: string): string {
    return path.join(this.locks, `cache.${path.basename(this.cacheFile(namespace, key), '.json')}.lock`);
  }

  cacheFile(namespace: string, key: string): string {
    return path.join(this.cache, `${createHash('sha256').update(`${namespace}\0${key}`).digest('hex')}.json`);
  }
}

/** `<id>.json` -> `<id>`; undefined for other names (temp files, editors' leftovers). */
export function idOfJsonName(name: string): string | undefined {
  return name.endsWith('.json') ? name.slice(0, -5) : undefined;
}
