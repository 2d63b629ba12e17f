-- KEYS[1] = old key, KEYS[2] = new key (same hash slot). ARGV as for `rewrite`: the layout, the
-- whole session's pairs in it (under the new ID's keys when sealed), then ARGV for `apply`.
-- Returns 1 stored, 0 gone, 2 collision.
--
-- Readable to readable, `RENAME` keeps the fields (and any concurrent write to them) and is
-- atomic with the delta. A sealed hash's names and values are keyed by the old ID, so otherwise
-- the old hash is replaced by the whole session under the new key, its timestamps and TTL
-- carried over, in the same single step.
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 2
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local n = tonumber(ARGV[2])
if ARGV[1] == '1' and layout(KEYS[1]) == '1' then
  redis.call('RENAME', KEYS[1], KEYS[2])
  return apply(KEYS[2], 3 + n)
end
local meta = redis.call('HMGET', KEYS[1], 'm:c', 'm:s', 'm:e')
local ttl = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1])
if not meta[1] or not meta[2] or not meta[3] then
  return 0
end
redis.call('HSET', KEYS[2], 'm:c', meta[1], 'm:s', meta[2], 'm:e', meta[3])
if ARGV[1] == '2' then
  redis.call('HSET', KEYS[2], 'm:v', '2')
end
batched('HSET', KEYS[2], 3, 2 + n)
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return apply(KEYS[2], 3 + n)
