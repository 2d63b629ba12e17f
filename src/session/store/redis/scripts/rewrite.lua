-- KEYS[1] = key. ARGV[1] = the layout to write, ARGV[2] = n, ARGV[3 .. 2+n] = the whole session's
-- field/value pairs in that layout, then ARGV as for `apply` from 3+n. Returns 1 stored, 0 gone.
--
-- Migration between layouts (readable -> sealed when `redis.encrypt` is on, sealed -> readable
-- when it is off): every data field is replaced by the whole session, in one step. If a
-- concurrent request migrated the hash first, only this request's delta is applied, so its
-- change and theirs both land.
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then
  return 0
end
local n = tonumber(ARGV[2])
if layout(key) ~= ARGV[1] then
  for _, field in ipairs(redis.call('HKEYS', key)) do
    if string.sub(field, 1, 2) ~= 'm:' then
      redis.call('HDEL', key, field)
    end
  end
  batched('HSET', key, 3, 2 + n)
  if ARGV[1] == '2' then
    redis.call('HSET', key, 'm:v', '2')
  else
    redis.call('HDEL', key, 'm:v')
  end
end
return apply(key, 3 + n)
