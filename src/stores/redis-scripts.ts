/**
 * The Redis store's Lua scripts: each call one script, so one round trip, atomic per
 * workspace. How values are encoded is the codec's business.
 */
import { createHash } from 'node:crypto';

// Hash layout: `f:<field>` → JSON value, `t:<field>` → timestamp of its last write, plus
// `version`, `source` and `updatedAt`. A workspace's keys and its feed shard's stream carry
// the shard's hash tag, so each script touches one slot of a cluster.
//
// An upsert costs Redis six commands up to about 2,000 fields (1,000 with timestamps): the
// script, the tombstone check (with a timestamp), one HMGET of the version, crash-recovery
// mark, values and stamps, one HSET of what changed (and of the mark, cleared), one XADD of what changed to the shard's stream, and one
// PUBLISH of the shard's number, a wake-up. Longer argument lists go in chunks of 4,000, one
// command each: Lua's unpack takes 8,000 values at most.
const UPSERT_SOURCE = `
local key, tomb, feed = KEYS[1], KEYS[2], KEYS[3]
local id, source, ts, now, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local shard, feedLength, replica = ARGV[6], ARGV[7], ARGV[8]
local stamped = ts ~= ''
if stamped then
  local removedAt = redis.call('GET', tomb)
  if removedAt and tonumber(ts) <= tonumber(removedAt) then return 0 end
end
local CHUNK = 4000
local function each(command, list)
  local out = {}
  for s = 1, #list, CHUNK do
    local part = redis.call(command, key, unpack(list, s, math.min(s + CHUNK - 1, #list)))
    if type(part) == 'table' then for j = 1, #part do out[#out + 1] = part[j] end end
  end
  return out
end
local mark = 'p:' .. replica
local names = {'version', mark}
for i = 9, #ARGV, 2 do
  names[#names + 1] = 'f:' .. ARGV[i]
  if stamped then names[#names + 1] = 't:' .. ARGV[i] end
end
local current = each('HMGET', names)
local writes, changed = {}, {}
-- The write that lands the patch clears its replica's crash-recovery mark, in the same HSET.
if current[2] == '1' then writes[1] = mark; writes[2] = '' end
local at = 3
for i = 9, #ARGV, 2 do
  local name, value = ARGV[i], ARGV[i + 1]
  local newer = true
  if stamped then
    local stamp = current[at + 1]
    if stamp and tonumber(stamp) >= tonumber(ts) then newer = false
    else writes[#writes + 1] = 't:' .. name; writes[#writes + 1] = ts end
  end
  if newer and current[at] ~= value then
    writes[#writes + 1] = 'f:' .. name; writes[#writes + 1] = value
    changed[#changed + 1] = name; changed[#changed + 1] = value
  end
  at = at + (stamped and 2 or 1)
end
local version = current[1]
if version and #changed == 0 then
  if #writes > 0 then each('HSET', writes) end
  return 0
end
version = (tonumber(version) or 0) + 1
local updatedAt = stamped and ts or now
writes[#writes + 1] = 'version'; writes[#writes + 1] = version
writes[#writes + 1] = 'source'; writes[#writes + 1] = source
writes[#writes + 1] = 'updatedAt'; writes[#writes + 1] = updatedAt
each('HSET', writes)
redis.call('XADD', feed, 'MAXLEN', '~', feedLength, '*', 'c',
  cjson.encode({'upsert', id, changed, version, source, updatedAt}))
redis.call('PUBLISH', channel, shard)
return 1
`;

const REMOVE_SOURCE = `
local key, tomb, feed = KEYS[1], KEYS[2], KEYS[3]
local id, ts, now, ttl, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local shard, feedLength, replica = ARGV[6], ARGV[7], ARGV[8]
local removedAt = ts ~= '' and ts or now
local previous = redis.call('GET', tomb)
if not previous or tonumber(removedAt) > tonumber(previous) then
  redis.call('SET', tomb, removedAt, 'PX', ttl)
end
local entry = redis.call('HGETALL', key)
if #entry == 0 then return 0 end
redis.call('DEL', key)
-- Other replicas' marks stay: a patch they accepted after this removal is theirs to write.
local known = false
for i = 1, #entry, 2 do
  if entry[i] == 'version' then known = true
  elseif entry[i]:sub(1, 2) == 'p:' and entry[i + 1] == '1' and entry[i] ~= 'p:' .. replica then
    redis.call('HSET', key, entry[i], '1')
  end
end
-- A hash with only marks is no workspace yet: nothing to tell the feed.
if not known then return 0 end
redis.call('XADD', feed, 'MAXLEN', '~', feedLength, '*', 'c', cjson.encode({'remove', id, entry}))
redis.call('PUBLISH', channel, shard)
return 1
`;

// A feed shard's entries after a position: {1, entries} while every entry after it is still
// kept, {0} when some were trimmed, or the position is not one of this stream's (the stream
// was deleted and began again). MAXLEN trims the oldest first and never the last entry, so
// the entries after a position are all kept exactly while the position's own entry is. A
// reader that has seen nothing ('0-0') missed nothing while no entry was ever trimmed.
const FEED_READ_SOURCE = `
local feed, cursor, count = KEYS[1], ARGV[1], tonumber(ARGV[2])
if cursor == '0-0' then
  if redis.call('EXISTS', feed) == 0 then return {1, {}} end
  local info = redis.call('XINFO', 'STREAM', feed)
  local length, added
  for i = 1, #info, 2 do
    if info[i] == 'length' then length = info[i + 1] end
    if info[i] == 'entries-added' then added = info[i + 1] end
  end
  if length ~= added then return {0} end
  return {1, redis.call('XRANGE', feed, '-', '+', 'COUNT', count)}
end
local entries = redis.call('XRANGE', feed, cursor, '+', 'COUNT', count + 1)
if #entries == 0 or entries[1][1] ~= cursor then return {0} end
table.remove(entries, 1)
return {1, entries}
`;

// Crash recovery. A replica marks a workspace whose patch it holds: the field `p:<replica>`
// of the workspace's hash is `1` (several replicas may hold patches of one workspace), and
// the workspace joins the replica's set of marked workspaces in its shard, which survivors
// read. The write that lands the patch sets the field to '' in its own HSET, at no command
// of its own; the set and the cleared fields are swept when the replica is claimed.
const MARK_SOURCE = `
local marked, mark = KEYS[1], 'p:' .. ARGV[1]
for i = 2, #KEYS do redis.call('HSET', KEYS[i], mark, '1') end
for s = 2, #ARGV, 4000 do
  redis.call('SADD', marked, unpack(ARGV, s, math.min(s + 3999, #ARGV)))
end
return 1
`;

// Takes a replica's marks out of patches that will not be written (skipped): a hash with
// nothing else goes with its last field.
const UNMARK_SOURCE = `
local mark = 'p:' .. ARGV[1]
for i = 1, #KEYS do redis.call('HDEL', KEYS[i], mark) end
return 1
`;

// A replica's heartbeat: its id in the registry (a sorted set), scored with when it expires
// by Redis's clock, so that replicas' clocks do not matter. Replicas gone for a day are
// forgotten: their marks were claimed long before.
const HEARTBEAT_SOURCE = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 86400000)
return 1
`;

// The replicas whose heartbeat has expired, this one aside.
const EXPIRED_SOURCE = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
local others = {}
for _, replica in ipairs(expired) do
  if replica ~= ARGV[1] then others[#others + 1] = replica end
end
return others
`;

// Claims a shard's marks left by expired replicas: each mark still set becomes this
// replica's (so exactly one survivor re-reads its workspace); every field and set of the
// expired replicas goes. The keys are built here from the shard's tag, all in its slot.
const CLAIM_SOURCE = `
local mine, base, setBase, replica = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local claimed = {}
for i = 4, #ARGV do
  local marked = setBase .. ARGV[i]
  local field = 'p:' .. ARGV[i]
  for _, tag in ipairs(redis.call('SMEMBERS', marked)) do
    local key = base .. tag
    if redis.call('HGET', key, field) == '1' then
      redis.call('HSET', key, 'p:' .. replica, '1')
      redis.call('SADD', mine, tag)
      claimed[#claimed + 1] = tag
    end
    redis.call('HDEL', key, field)
  end
  redis.call('DEL', marked)
end
return claimed
`;

// Forgets expired replicas whose marks every shard gave up.
const FORGET_SOURCE = `
for i = 1, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end
return 1
`;

// The position of a feed shard's last entry, '0-0' for a shard with none yet.
const FEED_END_SOURCE = `
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last == 0 then return '0-0' end
return last[1][1]
`;

/** A script as the store sends it: by SHA1 (EVALSHA), in full once Redis does not know it. */
export interface RedisScript {
  /** What it does, as errors name it. */
  readonly operation: 'upsert' | 'remove' | 'feed' | 'recovery';
  readonly source: string;
  readonly sha: string;
  /** How many of its arguments are keys. */
  readonly keys: number;
  /** It writes: with `waitForReplicas`, its WAIT goes with it. */
  readonly writes: boolean;
}

const script = (
  operation: RedisScript['operation'],
  keys: number,
  source: string,
): RedisScript => ({
  operation,
  source,
  sha: createHash('sha1').update(source).digest('hex'),
  keys,
  writes: operation === 'upsert' || operation === 'remove',
});

export const UPSERT = script('upsert', 3, UPSERT_SOURCE);
export const REMOVE = script('remove', 3, REMOVE_SOURCE);
export const FEED_READ = script('feed', 1, FEED_READ_SOURCE);
export const FEED_END = script('feed', 1, FEED_END_SOURCE);
export const MARK = script('recovery', 0, MARK_SOURCE);
export const UNMARK = script('recovery', 0, UNMARK_SOURCE);
export const HEARTBEAT = script('recovery', 1, HEARTBEAT_SOURCE);
export const EXPIRED = script('recovery', 1, EXPIRED_SOURCE);
export const CLAIM = script('recovery', 1, CLAIM_SOURCE);
export const FORGET = script('recovery', 1, FORGET_SOURCE);

/** Redis does not know the script yet: it is sent in full once. */
export const isNoScript = (error: unknown): boolean =>
  String((error as Error | undefined)?.message).includes('NOSCRIPT');
