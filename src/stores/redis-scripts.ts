/**
 * The Redis store's Lua scripts: each call one script, so one round trip, atomic per
 * workspace. How values are encoded is the codec's business.
 */
import { createHash } from 'node:crypto';

// Hash layout: `f:<field>` → JSON value, `t:<field>` → timestamp of its last write,
// plus `version`, `source` and `updatedAt`. One script per call: one round trip, atomic.
export const UPSERT = `
local key, tomb = KEYS[1], KEYS[2]
local id, source, ts, now, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if ts ~= '' then
  local removedAt = redis.call('GET', tomb)
  if removedAt and tonumber(ts) <= tonumber(removedAt) then return 0 end
end
local existed = redis.call('EXISTS', key) == 1
local changed = {}
for i = 6, #ARGV, 2 do
  local name, value = ARGV[i], ARGV[i + 1]
  local newer = true
  if ts ~= '' then
    local previous = redis.call('HGET', key, 't:' .. name)
    if previous and tonumber(previous) >= tonumber(ts) then newer = false
    else redis.call('HSET', key, 't:' .. name, ts) end
  end
  if newer and redis.call('HGET', key, 'f:' .. name) ~= value then
    redis.call('HSET', key, 'f:' .. name, value)
    changed[#changed + 1] = name
  end
end
if existed and #changed == 0 then return 0 end
redis.call('HINCRBY', key, 'version', 1)
redis.call('HSET', key, 'source', source, 'updatedAt', ts ~= '' and ts or now)
redis.call('PUBLISH', channel, cjson.encode({'upsert', id, changed, redis.call('HGETALL', key)}))
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
