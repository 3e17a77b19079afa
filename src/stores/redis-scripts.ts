/**
 * The Redis store's Lua scripts: each call one script, so one round trip, atomic per
 * workspace. How values are encoded is the codec's business.
 */
import { createHash } from 'node:crypto';

// Hash layout: `f:<field>` → JSON value, `t:<field>` → timestamp of its last write, plus
// `version`, `source` and `updatedAt`. Both keys of a workspace carry its hash tag, so each
// script touches one slot of a cluster.
//
// An upsert costs Redis five commands up to about 2,000 fields (1,000 with timestamps): the
// script, the tombstone check (with a timestamp), one HMGET of the version, values and
// stamps, one HSET of what changed, and one PUBLISH of what changed. Longer argument lists
// go in chunks of 4,000, one command each: Lua's unpack takes 8,000 values at most.
export const UPSERT = `
local key, tomb = KEYS[1], KEYS[2]
local id, source, ts, now, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
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
local names = {'version'}
for i = 6, #ARGV, 2 do
  names[#names + 1] = 'f:' .. ARGV[i]
  if stamped then names[#names + 1] = 't:' .. ARGV[i] end
end
local current = each('HMGET', names)
local writes, changed = {}, {}
local at = 2
for i = 6, #ARGV, 2 do
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
redis.call('PUBLISH', channel, cjson.encode({'upsert', id, changed, version, source, updatedAt}))
return 1
`;

export const REMOVE = `
local key, tomb = KEYS[1], KEYS[2]
local id, ts, now, ttl, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local removedAt = ts ~= '' and ts or now
local previous = redis.call('GET', tomb)
if not previous or tonumber(removedAt) > tonumber(previous) then
  redis.call('SET', tomb, removedAt, 'PX', ttl)
end
local entry = redis.call('HGETALL', key)
if #entry == 0 then return 0 end
redis.call('DEL', key)
redis.call('PUBLISH', channel, cjson.encode({'remove', id, entry}))
return 1
`;

export const sha1 = (script: string): string => createHash('sha1').update(script).digest('hex');

/** Redis does not know the script yet: it is sent in full once. */
export const isNoScript = (error: unknown): boolean =>
  String((error as Error | undefined)?.message).includes('NOSCRIPT');
