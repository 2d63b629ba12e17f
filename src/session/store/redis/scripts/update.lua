-- KEYS[1] = key. ARGV as for `apply` from 1. Returns 1 stored, 0 gone.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
return apply(KEYS[1], 1)
