import { RedisKeys } from '../../../src/store/redis/keys';

/** The part of a key Redis Cluster hashes: the first non-empty `{...}`, else the whole key (the cluster spec's rule). */
function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open === -1) return key;
  const close = key.indexOf('}', open + 1);
  if (close === -1 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

/** Every key the store builds, by the method that builds it. */
function everyKey(k: RedisKeys): { queue: string[]; evidence: string[] } {
  const queue = [
    k.message('M1'),
    k.body('M1'),
    k.bodyUpload('M1'),
    k.job('M1/one.test'),
    k.messages(),
    k.jobStates(),
    k.finished(),
    k.due(),
    k.leases(),
    k.leaseOwners(),
    k.fallback('M1.1'),
    k.fallbackStates(),
    k.fallbackAll(),
    k.fallbackReady(),
    k.fallbackClaims(),
    k.messageFallback('M1'),
    k.portalItem('p1'),
    k.portalBlob('p1'),
    k.portalUpload('p1', 'n'),
    k.portalEvents('p1'),
    k.portalAll(),
    k.portalTokens(),
    k.portalItemTokens(),
    k.quarantine(),
    k.quarantined(k.message('M1')),
    k.cache('ns', 'key'),
    k.tlsRptCounters('2026-01-01', 'one.test'),
    k.tlsRptDomains('2026-01-01'),
    k.tlsRptDays(),
  ];
  const evidence = [
    k.evidenceHead(),
    k.evidenceLastAnchor(),
    k.evidenceAnchors(),
    k.evidenceBase(),
    k.evidenceDays(),
    k.evidenceDay('2026-01-01'),
    k.evidenceDayIndexes('2026-01-01'),
    k.evidenceSpans(),
    k.evidencePruning(),
    k.evidenceIndex('r', 'a@one.test'),
  ];
  return { queue, evidence };
}

describe('Redis key names', () => {
  test('on a single Redis they are exactly the names an existing deployment has stored its queue under', () => {
    const k = new RedisKeys('sealgate');
    expect(k.message('M1')).toBe('sealgate:msg:M1');
    expect(k.body('M1')).toBe('sealgate:body:M1');
    expect(k.job('M1/one.test')).toBe('sealgate:job:M1/one.test');
    expect(k.due()).toBe('sealgate:due');
    expect(k.quarantined('sealgate:msg:M1')).toBe('sealgate:q:msg:M1');
    expect(k.cache('ns', 'key')).toBe('sealgate:cache:2:ns:key');
    expect(k.evidenceHead()).toBe('sealgate:evidence:{sealgate-evidence}:head');
    expect(k.evidenceIndex('r', 'a@one.test')).toBe('sealgate:evidence:{sealgate-evidence}:ix:r:a@one.test');
    expect(k.all()).toBe('sealgate:*');
  });

  test('on a cluster every queue key hashes on the prefix alone, every evidence key on the evidence tag: one slot each', () => {
    const k = new RedisKeys('sealgate', true);
    const { queue, evidence } = everyKey(k);
    expect(new Set(queue.map(hashTag))).toEqual(new Set(['sealgate']));
    expect(new Set(evidence.map(hashTag))).toEqual(new Set(['sealgate-evidence']));
    expect(k.message('M1')).toBe('{sealgate}:msg:M1');
    expect(k.quarantined(k.message('M1'))).toBe('{sealgate}:q:msg:M1');
    expect(k.evidenceHead()).toBe('sealgate:evidence:{sealgate-evidence}:head');
    expect(k.all()).toBe('{sealgate}:*');
  });

  test('on a single Redis the queue keys carry no hash tag (their names must not change)', () => {
    const { queue } = everyKey(new RedisKeys('sealgate'));
    expect(queue.filter((key) => key.includes('{'))).toEqual([]);
  });
});
