import type { Redis } from 'ioredis';
import { handedOver, LeaseLostError, NotFoundError, StoreError } from '../errors';

/*
 * Lua scripts for every multi-key change of the Redis store. Each runs atomically in Redis.
 * Scripts never decode JSON (cjson turns empty arrays into objects); states they must check are kept
 * in small side structures (jobstates hash, fbstates hash) instead.
 * Fallback state strings: "state\towner\texpiresAt\tackedAt" (empty fields where not applicable).
 * Scripts that change state reply with a ScriptResult (below); scriptOutcome() alone turns a reply into a
 * result or a typed error.
 */

const ENQUEUE = `
-- Commits a streamed message: body upload -> body, message record, jobs, schedule.
-- KEYS[1] body upload, KEYS[2] body, KEYS[3] message, KEYS[4] messages zset, KEYS[5] jobstates hash,
-- KEYS[6] due zset, KEYS[7] finished zset, KEYS[8..] one job key per job.
-- ARGV[1] message JSON, ARGV[2] message id, ARGV[3] receivedAt, ARGV[4] body size,
-- then per job: job id, job JSON, dueAt.
-- Returns 1; 0 when a message with this id is stored already (a caller-chosen id written again by a retry whose
-- first try landed): nothing is stored, this try's upload is dropped, and the record is written back unchanged so
-- that a WAIT after this script (cluster) covers the first write too. An error when the uploaded body is missing
-- or incomplete (it expired).
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[3], redis.call('GET', KEYS[3]))
  return 0
end
local size = tonumber(ARGV[4])
if size > 0 then
  if redis.call('STRLEN', KEYS[1]) ~= size then return redis.error_reply('body upload incomplete') end
  redis.call('RENAME', KEYS[1], KEYS[2])
  redis.call('PERSIST', KEYS[2])
else
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], '')
end
redis.call('SET', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[2])
if #KEYS == 7 then redis.call('ZADD', KEYS[7], ARGV[3], ARGV[2]) end
for i = 8, #KEYS do
  local a = 5 + (i - 8) * 3
  redis.call('SET', KEYS[i], ARGV[a + 1])
  redis.call('HSET', KEYS[5], ARGV[a], 'queued')
  redis.call('ZADD', KEYS[6], ARGV[a + 2], ARGV[a])
end
return 1
`;

/** sgEnqueue's reply when the message id was taken: the message stored first is kept and nothing new is stored. */
export const ENQUEUE_FOUND = 0;

const CLAIM = `
-- Leases up to ARGV[2] jobs: due waiting jobs first, then jobs whose lease expired (if still waiting).
-- KEYS[1] due zset, KEYS[2] leases zset, KEYS[3] lease owners hash, KEYS[4] jobstates hash.
-- ARGV[1] now, ARGV[2] limit, ARGV[3] lease expiry, ARGV[4] owner.
-- Returns the leased job ids, those taken over from an expired lease prefixed with '!'.
local out = {}
local limit = tonumber(ARGV[2])
local function lease(id, mark)
  redis.call('ZADD', KEYS[2], ARGV[3], id)
  redis.call('HSET', KEYS[3], id, ARGV[4])
  out[#out + 1] = mark .. id
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, limit)) do
  redis.call('ZREM', KEYS[1], id)
  lease(id, '')
end
if #out < limit then
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, limit - #out)) do
    local state = redis.call('HGET', KEYS[4], id)
    if state == 'queued' or state == 'deferred' then
      lease(id, '!')
    else
      redis.call('ZREM', KEYS[2], id)
      redis.call('HDEL', KEYS[3], id)
    end
  end
end
return out
`;

const RENEW_LEASE = `
-- KEYS[1] leases zset, KEYS[2] lease owners hash. ARGV[1] job id, ARGV[2] owner, ARGV[3] new expiry.
-- Returns 1, or -1 when the caller no longer holds the lease.
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return -1 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
`;

const RELEASE_LEASE = `
-- Hands a lease back; a still-waiting job is due at once.
-- KEYS[1] leases zset, KEYS[2] lease owners hash, KEYS[3] jobstates hash, KEYS[4] due zset.
-- ARGV[1] job id, ARGV[2] owner, ARGV[3] now. Returns 1, or -1 when the caller does not hold the lease.
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return -1 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
local state = redis.call('HGET', KEYS[3], ARGV[1])
if state == 'queued' or state == 'deferred' then redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1]) end
return 1
`;

const UPDATE_JOB = `
-- Compare-and-set of one job record, with its schedule, lease and fallback items in the same step.
-- KEYS[1] job, KEYS[2] jobstates hash, KEYS[3] due zset, KEYS[4] leases zset, KEYS[5] lease owners hash,
-- KEYS[6] fallback-all zset, KEYS[7] fallback-ready zset, KEYS[8] fallback-claims zset,
-- KEYS[9] fbstates hash, KEYS[10] message's fallback set, KEYS[11] key of the fallback item to remove
-- (any key when none), KEYS[12] finished zset, KEYS[13..] one key per new fallback item.
-- ARGV[1] job id, ARGV[2] expected current job JSON, ARGV[3] new job JSON, ARGV[4] new stored state,
-- ARGV[5] dueAt when the job waits ('' when it does not), ARGV[6] lease owner required ('' for none),
-- ARGV[7] '1' to drop the lease, ARGV[8] fallback item id to remove ('' for none), ARGV[9] message id,
-- ARGV[10] all job ids of the message, newline-separated, ARGV[11] now,
-- then per new item: id, JSON, divertedAt.
-- The finished zset (message id by time) lists messages whose jobs are all final, for sweep.
-- Returns (ScriptResult) 1 done, 0 job changed or gone (re-read and retry), -1 lease lost, -2 item gone, -3 item acked.
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
if ARGV[6] ~= '' and redis.call('HGET', KEYS[5], ARGV[1]) ~= ARGV[6] then return -1 end
if ARGV[8] ~= '' then
  local st = redis.call('HGET', KEYS[9], ARGV[8])
  if not st then return -2 end
  if string.sub(st, 1, 5) == 'acked' then return -3 end
  redis.call('DEL', KEYS[11])
  redis.call('HDEL', KEYS[9], ARGV[8])
  redis.call('ZREM', KEYS[6], ARGV[8])
  redis.call('ZREM', KEYS[7], ARGV[8])
  redis.call('ZREM', KEYS[8], ARGV[8])
  redis.call('SREM', KEYS[10], ARGV[8])
end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
if ARGV[7] == '1' then
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('HDEL', KEYS[5], ARGV[1])
end
if ARGV[5] ~= '' and redis.call('HEXISTS', KEYS[5], ARGV[1]) == 0 then
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
else
  redis.call('ZREM', KEYS[3], ARGV[1])
end
local final = { delivered = true, diverted = true, bounced = true }
if final[ARGV[4]] then
  local all = true
  for id in string.gmatch(ARGV[10], '[^\\n]+') do
    local state = redis.call('HGET', KEYS[2], id)
    if not state or not final[state] then all = false break end
  end
  if all then redis.call('ZADD', KEYS[12], ARGV[11], ARGV[9]) end
else
  redis.call('ZREM', KEYS[12], ARGV[9])
end
for i = 13, #KEYS do
  local a = 12 + (i - 13) * 3
  redis.call('SET', KEYS[i], ARGV[a + 1])
  redis.call('HSET', KEYS[9], ARGV[a], 'ready\\t\\t\\t')
  redis.call('ZADD', KEYS[6], ARGV[a + 2], ARGV[a])
  redis.call('ZADD', KEYS[7], ARGV[a + 2], ARGV[a])
  redis.call('ZREM', KEYS[8], ARGV[a])
  redis.call('SADD', KEYS[10], ARGV[a])
end
return 1
`;

const CLAIM_FALLBACK = `
-- Claims up to ARGV[2] fallback items: ready ones first (oldest first), then claims that expired.
-- KEYS[1] fallback-ready zset, KEYS[2] fallback-claims zset, KEYS[3] fbstates hash.
-- ARGV[1] now, ARGV[2] limit, ARGV[3] claim expiry, ARGV[4] owner. Returns the claimed ids.
local out = {}
local limit = tonumber(ARGV[2])
local function claim(id)
  redis.call('ZADD', KEYS[2], ARGV[3], id)
  redis.call('HSET', KEYS[3], id, 'claimed\\t' .. ARGV[4] .. '\\t' .. ARGV[3] .. '\\t')
  out[#out + 1] = id
end
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, limit - 1)) do
  redis.call('ZREM', KEYS[1], id)
  claim(id)
end
if #out < limit then
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, limit - #out)) do
    claim(id)
  end
end
return out
`;

const ACK_FALLBACK = `
-- KEYS[1] fallback-claims zset, KEYS[2] fbstates hash. ARGV[1] item id, ARGV[2] owner, ARGV[3] now.
-- Returns 1 acked (or already acked), -1 not claimed by this owner, -2 no such item.
local st = redis.call('HGET', KEYS[2], ARGV[1])
if not st then return -2 end
local state, owner = string.match(st, '^(%a+)\\t([^\\t]*)')
if state == 'acked' then return 1 end
if state ~= 'claimed' or owner ~= ARGV[2] then return -1 end
redis.call('HSET', KEYS[2], ARGV[1], 'acked\\t\\t\\t' .. ARGV[3])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
`;

const PUT_PORTAL = `
-- Commits a streamed portal copy: ciphertext upload -> blob, record, creation index, token index.
-- KEYS[1] upload, KEYS[2] blob, KEYS[3] item, KEYS[4] portalall zset, KEYS[5] tokens hash (token hash -> id),
-- KEYS[6] item tokens hash (id -> token hash). ARGV[1] id, ARGV[2] item JSON, ARGV[3] createdAt,
-- ARGV[4] ciphertext size, ARGV[5] token hash ('' for none).
-- Returns 1, or an error when the upload is missing or incomplete (it expired).
local size = tonumber(ARGV[4])
if size > 0 then
  if redis.call('STRLEN', KEYS[1]) ~= size then return redis.error_reply('portal upload incomplete') end
  redis.call('RENAME', KEYS[1], KEYS[2])
  redis.call('PERSIST', KEYS[2])
else
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], '')
end
local old = redis.call('HGET', KEYS[6], ARGV[1])
if old and redis.call('HGET', KEYS[5], old) == ARGV[1] then redis.call('HDEL', KEYS[5], old) end
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[5], ARGV[5], ARGV[1])
  redis.call('HSET', KEYS[6], ARGV[1], ARGV[5])
else
  redis.call('HDEL', KEYS[6], ARGV[1])
end
redis.call('SET', KEYS[3], ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
return 1
`;

const UPDATE_PORTAL = `
-- Compare-and-set of one portal record; the token index follows its token hash.
-- KEYS[1] item, KEYS[2] tokens hash, KEYS[3] item tokens hash.
-- ARGV[1] id, ARGV[2] record as read, ARGV[3] new record, ARGV[4] new token hash ('' for none).
-- Returns 1 (done), 0 (changed since read: retry) or -2 (gone).
local current = redis.call('GET', KEYS[1])
if not current then return -2 end
if current ~= ARGV[2] then return 0 end
local old = redis.call('HGET', KEYS[3], ARGV[1])
if old and old ~= ARGV[4] and redis.call('HGET', KEYS[2], old) == ARGV[1] then redis.call('HDEL', KEYS[2], old) end
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[2], ARGV[4], ARGV[1])
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
else
  redis.call('HDEL', KEYS[3], ARGV[1])
end
redis.call('SET', KEYS[1], ARGV[3])
return 1
`;

const APPEND_PORTAL_EVENT = `
-- Appends one chained event, only if the trail still has the length its hash was computed from.
-- KEYS[1] events list. ARGV[1] expected length, ARGV[2] event JSON.
-- Returns 1 (done) or 0 (another event came first: recompute and retry).
if redis.call('LLEN', KEYS[1]) ~= tonumber(ARGV[1]) then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[2])
return 1
`;

const QUARANTINE = `
-- Sets a damaged entry aside: out of every index and schedule, its keys renamed under the quarantine prefix.
-- KEYS[1] quarantine hash, KEYS[2] messages zset, KEYS[3] finished zset, KEYS[4] due zset, KEYS[5] leases zset,
-- KEYS[6] lease owners hash, KEYS[7] jobstates hash, KEYS[8] fbstates hash, KEYS[9] fallback-all zset,
-- KEYS[10] fallback-ready zset, KEYS[11] fallback-claims zset, KEYS[12..] pairs (key, quarantine key).
-- ARGV[1] entry id, ARGV[2] entry JSON, ARGV[3] number of job ids n, ARGV[4..3+n] job ids, then fallback ids.
-- Returns 1, or 0 when the entry was already quarantined (nothing changed: logged once).
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
local n = tonumber(ARGV[3])
for i = 4, 3 + n do
  redis.call('ZREM', KEYS[4], ARGV[i])
  redis.call('ZREM', KEYS[5], ARGV[i])
  redis.call('HDEL', KEYS[6], ARGV[i])
  redis.call('HDEL', KEYS[7], ARGV[i])
end
for i = 4 + n, #ARGV do
  redis.call('HDEL', KEYS[8], ARGV[i])
  redis.call('ZREM', KEYS[9], ARGV[i])
  redis.call('ZREM', KEYS[10], ARGV[i])
  redis.call('ZREM', KEYS[11], ARGV[i])
end
for i = 12, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('RENAME', KEYS[i], KEYS[i + 1])
    redis.call('PERSIST', KEYS[i + 1])
  end
end
return 1
`;

const CACHE_INCREMENT = `
-- KEYS[1] cache key. ARGV[1] ttl (ms). A missing or non-integer entry starts at 1 with the ttl; an existing
-- counter keeps its expiry. Returns the new value.
local current = redis.call('GET', KEYS[1])
if current and not string.match(current, '^%-?%d+$') then redis.call('DEL', KEYS[1]) end
local value = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return value
`;

const EVIDENCE_APPEND = `
-- Appends one batch of evidence records (and seals the day before it) only if the log is still as the caller
-- read it: SHA-256 cannot run here, so the caller chains the batch onto the head it read and this script
-- compares-and-sets. Every key shares one hash tag.
-- KEYS[1] head string, KEYS[2] last-anchor string, KEYS[3] anchors hash, KEYS[4] days zset, KEYS[5] the batch
-- day's list, KEYS[6] the batch day's index-key set, KEYS[7] spans hash, KEYS[8..] index keys.
-- ARGV[1] head as read ('' none), ARGV[2] last anchor as read ('' none), ARGV[3] day to seal ('' none),
-- ARGV[4] its anchor JSON, ARGV[5] batch day, ARGV[6] first seq of the batch, ARGV[7] number of records n,
-- ARGV[8] smallest at, ARGV[9] largest at, then per record: JSON, at, k, k numbers (index into KEYS).
-- Returns 1 appended, 2 already appended (a resent call whose first run was applied), 0 the log moved on
-- (re-read and rebuild), -4 the batch day is sealed already (rebuild on a later day).
local n = tonumber(ARGV[7])
local head = redis.call('GET', KEYS[1]) or ''
local anchor = redis.call('GET', KEYS[2]) or ''
if head ~= ARGV[1] or anchor ~= ARGV[2] then
  if n > 0 then
    local dayFirst = redis.call('ZSCORE', KEYS[4], ARGV[5])
    if dayFirst and redis.call('LINDEX', KEYS[5], tonumber(ARGV[6]) - tonumber(dayFirst)) == ARGV[10] then return 2 end
  end
  return 0
end
if n > 0 and redis.call('HEXISTS', KEYS[3], ARGV[5]) == 1 then return -4 end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
  redis.call('SET', KEYS[2], ARGV[4])
end
if n == 0 then return 1 end
local pos = redis.call('LLEN', KEYS[5])
redis.call('ZADD', KEYS[4], 'NX', tonumber(ARGV[6]) - pos, ARGV[5])
local a = 10
local last = ''
for i = 1, n do
  local k = tonumber(ARGV[a + 2])
  redis.call('RPUSH', KEYS[5], ARGV[a])
  last = ARGV[a]
  local member = ARGV[5] .. ':' .. (pos + i - 1)
  -- An index key someone overwrote with another type must not stop the append half way: the records and the
  -- head are what counts, an index entry is only a short cut (queries skip what they cannot find).
  for j = 1, k do redis.pcall('ZADD', KEYS[tonumber(ARGV[a + 2 + j])], ARGV[a + 1], member) end
  a = a + 3 + k
end
for i = 8, #KEYS do redis.pcall('SADD', KEYS[6], KEYS[i]) end
local lo, hi = tonumber(ARGV[8]), tonumber(ARGV[9])
local span = redis.call('HGET', KEYS[7], ARGV[5])
if span then
  local tab = string.find(span, '\t', 1, true)
  lo = math.min(lo, tonumber(string.sub(span, 1, tab - 1)))
  hi = math.max(hi, tonumber(string.sub(span, tab + 1)))
end
redis.call('HSET', KEYS[7], ARGV[5], string.format('%.0f\t%.0f', lo, hi))
redis.call('SET', KEYS[1], last)
return 1
`;

const EVIDENCE_PRUNE_DAY = `
-- Removes one sealed day of evidence: its records and anchor go, the base moves to it, and the day is listed
-- as pruning until its index members are removed (outside this script, in bounded steps).
-- KEYS[1] days zset, KEYS[2] anchors hash, KEYS[3] base string, KEYS[4] the day's list, KEYS[5] pruning set.
-- ARGV[1] day, ARGV[2] new base JSON, ARGV[3] the day's anchor JSON as read.
-- Returns 1 removed, 0 already gone (another relay pruned it), -1 its anchor changed or is missing.
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[3] then return -1 end
redis.call('UNLINK', KEYS[4])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('SET', KEYS[3], ARGV[2])
redis.call('SADD', KEYS[5], ARGV[1])
return 1
`;

/**
 * What the scripts that change state answer (RENEW_LEASE, RELEASE_LEASE, UPDATE_JOB, ACK_FALLBACK, UPDATE_PORTAL,
 * APPEND_PORTAL_EVENT).
 * The numbers are the scripts' return values; scriptOutcome() is the one place that gives them meaning.
 */
export const ScriptResult = {
  /** The change was made. */
  done: 1,
  /** UPDATE_JOB, UPDATE_PORTAL, APPEND_PORTAL_EVENT: the record changed since it was read; re-read and try again. */
  changed: 0,
  /** The caller does not hold the lease (or the fallback claim). */
  leaseLost: -1,
  /** The fallback item (or portal item) is gone. */
  itemGone: -2,
  /** The fallback item was acknowledged by a portal: it cannot be released. */
  handedOver: -3,
} as const;
export type ScriptResult = (typeof ScriptResult)[keyof typeof ScriptResult];

/** What a script acted on, for the error messages. */
export interface ScriptSubject {
  jobId?: string;
  /** The fallback item the script acted on. */
  itemId?: string;
  /** The portal item the script acted on. */
  portalItemId?: string;
  /** The lease or claim owner the script required. */
  owner?: string;
}

/**
 * Maps a script's answer to a result or a typed error: 'done', 'changed' (compare-and-set lost: retry),
 * LeaseLostError, NotFoundError or InvalidStateError code 'handed-over'. Any other reply is a StoreError
 * code 'internal' (a script and this code disagree).
 */
export function scriptOutcome(reply: number, subject: ScriptSubject): 'done' | 'changed' {
  switch (reply) {
    case ScriptResult.done:
      return 'done';
    case ScriptResult.changed:
      return 'changed';
    case ScriptResult.leaseLost:
      throw subject.jobId !== undefined
        ? new LeaseLostError(`lease on ${subject.jobId} is not held by ${subject.owner}`)
        : new LeaseLostError(`fallback item ${subject.itemId} is not claimed by ${subject.owner}`);
    case ScriptResult.itemGone:
      if (subject.portalItemId !== undefined) throw new NotFoundError(`portal item ${subject.portalItemId} not found`);
      throw new NotFoundError(`fallback item ${subject.itemId} not found`);
    case ScriptResult.handedOver:
      throw handedOver(subject.itemId ?? '');
    default:
      throw new StoreError('internal', `unexpected Redis script reply ${String(reply)}`);
  }
}

export interface StoreScripts {
  sgEnqueue(numKeys: number, ...args: (string | number)[]): Promise<number>;
  sgClaim(...args: (string | number)[]): Promise<string[]>;
  sgRenewLease(...args: (string | number)[]): Promise<number>;
  sgReleaseLease(...args: (string | number)[]): Promise<number>;
  sgUpdateJob(numKeys: number, ...args: (string | number)[]): Promise<number>;
  sgClaimFallback(...args: (string | number)[]): Promise<string[]>;
  sgAckFallback(...args: (string | number)[]): Promise<number>;
  sgPutPortal(...args: (string | number)[]): Promise<number>;
  sgUpdatePortal(...args: (string | number)[]): Promise<number>;
  sgAppendPortalEvent(...args: (string | number)[]): Promise<number>;
  sgCacheIncrement(...args: (string | number)[]): Promise<number>;
  sgQuarantine(numKeys: number, ...args: (string | number)[]): Promise<number>;
  sgEvidenceAppend(numKeys: number, ...args: (string | number)[]): Promise<number>;
  sgEvidencePruneDay(...args: (string | number)[]): Promise<number>;
}

export type ScriptedRedis = Redis & StoreScripts;

export function defineScripts(redis: Redis): ScriptedRedis {
  redis.defineCommand('sgEnqueue', { lua: ENQUEUE });
  redis.defineCommand('sgClaim', { lua: CLAIM, numberOfKeys: 4 });
  redis.defineCommand('sgRenewLease', { lua: RENEW_LEASE, numberOfKeys: 2 });
  redis.defineCommand('sgReleaseLease', { lua: RELEASE_LEASE, numberOfKeys: 4 });
  redis.defineCommand('sgUpdateJob', { lua: UPDATE_JOB });
  redis.defineCommand('sgClaimFallback', { lua: CLAIM_FALLBACK, numberOfKeys: 3 });
  redis.defineCommand('sgAckFallback', { lua: ACK_FALLBACK, numberOfKeys: 2 });
  redis.defineCommand('sgPutPortal', { lua: PUT_PORTAL, numberOfKeys: 6 });
  redis.defineCommand('sgUpdatePortal', { lua: UPDATE_PORTAL, numberOfKeys: 3 });
  redis.defineCommand('sgAppendPortalEvent', { lua: APPEND_PORTAL_EVENT, numberOfKeys: 1 });
  redis.defineCommand('sgCacheIncrement', { lua: CACHE_INCREMENT, numberOfKeys: 1 });
  redis.defineCommand('sgQuarantine', { lua: QUARANTINE });
  redis.defineCommand('sgEvidenceAppend', { lua: EVIDENCE_APPEND });
  redis.defineCommand('sgEvidencePruneDay', { lua: EVIDENCE_PRUNE_DAY, numberOfKeys: 5 });
  return redis as ScriptedRedis;
}

/** Parses an fbstates value ("state\towner\texpiresAt\tackedAt"). */
export function parseFallbackState(value: string): { state: 'ready' | 'claimed' | 'acked'; owner?: string; expiresAt?: number; ackedAt?: number } {
  const [state = 'ready', owner = '', expiresAt = '', ackedAt = ''] = value.split('\t');
  return {
    state: state === 'claimed' || state === 'acked' ? state : 'ready',
    ...(owner ? { owner } : {}),
    ...(expiresAt ? { expiresAt: Number(expiresAt) } : {}),
    ...(ackedAt ? { ackedAt: Number(ackedAt) } : {}),
  };
}
