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
local names = {'version', 'pending'}
for i = 9, #ARGV, 2 do
  names[#names + 1] = 'f:' .. ARGV[i]
  if stamped then names[#names + 1] = 't:' .. ARGV[i] end
end
local current = each('HMGET', names)
local writes, changed = {}, {}
-- The write that lands the patch clears its replica's crash-recovery mark, in the same HSET.
local marks = current[2]
if marks and (',' .. marks .. ','):find(',' .. replica .. ',', 1, true) then
  local others = {}
  for other in marks:gmatch('[^,]+') do if other ~= replica then others[#others + 1] = other end end
  writes[1] = 'pending'; writes[2] = table.concat(others, ',')
end
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
local shard, feedLength = ARGV[6], ARGV[7]
local removedAt = ts ~= '' and ts or now
local previous = redis.call('GET', tomb)
if not previous or tonumber(removedAt) > tonumber(previous) then
  redis.call('SET', tomb, removedAt, 'PX', ttl)
end
local entry = redis.call('HGETALL', key)
if #entry == 0 then return 0 end
redis.call('DEL', key)
-- A hash with only a crash-recovery mark is no workspace yet: nothing to tell the feed.
local known = false
for i = 1, #entry, 2 do if entry[i] == 'version' then known = true end end
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

// Crash recovery. A replica marks a workspace whose patch it holds: its id joins the list in
// the field `pending` of the workspace's hash (several replicas may hold patches of one
// workspace), which the write that lands its patch takes it out of, and the list of the
// workspace in the shard's index of marks (a hash: escaped id → replicas), which survivors
// read. The index is cleaned by its replicas after their writes land, so it holds about what
// is pending. Replica lists are comma-separated ids.
const LISTS = `
local function has(list, id)
  return list ~= nil and list ~= false and (',' .. list .. ','):find(',' .. id .. ',', 1, true) ~= nil
end
local function without(list, id)
  local out = {}
  if list then for other in list:gmatch('[^,]+') do if other ~= id then out[#out + 1] = other end end end
  return table.concat(out, ',')
end
local function with(list, id)
  if not list or list == '' then return id end
  if has(list, id) then return list end
  return list .. ',' .. id
end
local function store(key, field, list)
  if list == '' then redis.call('HDEL', key, field) else redis.call('HSET', key, field, list) end
end
`;

const MARK_SOURCE = `${LISTS}
local index, replica = KEYS[1], ARGV[1]
for i = 2, #KEYS do
  redis.call('HSET', KEYS[i], 'pending', with(redis.call('HGET', KEYS[i], 'pending'), replica))
  store(index, ARGV[i], with(redis.call('HGET', index, ARGV[i]), replica))
end
return 1
`;

// Marks a replica no longer needs: 'unmark' takes its own marks out (patches that will not
// be written; a hash with nothing but marks goes when none is left), 'landed' forgets index
// entries of workspaces whose writes took its marks out, unless marked again since.
const SETTLE_SOURCE = `${LISTS}
local index, replica, mode = KEYS[1], ARGV[1], ARGV[2]
for i = 2, #KEYS do
  local current = redis.call('HMGET', KEYS[i], 'pending', 'version')
  local own = has(current[1], replica)
  if own and mode == 'unmark' then
    local others = without(current[1], replica)
    if current[2] or others ~= '' then redis.call('HSET', KEYS[i], 'pending', others)
    else redis.call('DEL', KEYS[i]) end
  end
  if mode == 'unmark' or not own then
    local tag = ARGV[i + 1]
    local listed = redis.call('HGET', index, tag)
    if has(listed, replica) then store(index, tag, without(listed, replica)) end
  end
end
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

// Claims a shard's marks left by expired replicas: each one still in its workspace's hash
// becomes this replica's (so exactly one survivor re-reads it), a stale index entry goes.
// The hashes' keys are built here from the index (the shard's tag), all in its slot.
const CLAIM_SOURCE = `${LISTS}
local index, replica, base = KEYS[1], ARGV[1], ARGV[2]
local expired = {}
for i = 3, #ARGV do expired[ARGV[i]] = true end
local entries = redis.call('HGETALL', index)
local claimed = {}
for i = 1, #entries, 2 do
  local tag, listed = entries[i], entries[i + 1]
  local key, kept, found = base .. tag, listed, false
  for owner in listed:gmatch('[^,]+') do
    if expired[owner] then
      kept = without(kept, owner)
      local marks = redis.call('HGET', key, 'pending')
      if has(marks, owner) then
        redis.call('HSET', key, 'pending', with(without(marks, owner), replica))
        found = true
      end
    end
  end
  if found then
    kept = with(kept, replica)
    claimed[#claimed + 1] = tag
  end
  if kept ~= listed then store(index, tag, kept) end
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
export const SETTLE = script('recovery', 0, SETTLE_SOURCE);
export const HEARTBEAT = script('recovery', 1, HEARTBEAT_SOURCE);
export const EXPIRED = script('recovery', 1, EXPIRED_SOURCE);
export const CLAIM = script('recovery', 1, CLAIM_SOURCE);
export const FORGET = script('recovery', 1, FORGET_SOURCE);

/** Redis does not know the script yet: it is sent in full once. */
export const isNoScript = (error: unknown): boolean =>
  String((error as Error | undefined)?.message).includes('NOSCRIPT');
