-- KEYS[1] = old key, KEYS[2] = new key (same hash slot). ARGV as for `apply` from 1.
-- Returns 1 stored, 0 gone, 2 collision. `RENAME` keeps the fields and is atomic with the delta.
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 2
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('RENAME', KEYS[1], KEYS[2])
return apply(KEYS[2], 1)
