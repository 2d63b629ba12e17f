-- Shared by the update and regenerate scripts: apply the delta, advance `last_seen` (never
-- backwards) and set the TTL the proxy computed for that `last_seen`. Returns 1, or 0 after
-- deleting a session whose deadline has passed.
--
-- ARGV layout from `first`: last_seen, ttl_ms (what the session has left at that last_seen, by the
-- proxy's expiry rule; 0 = dead), n_delete, n_delete field names, then field/value pairs to set.
--
-- The deadline only grows with last_seen. So when a concurrent write has already stored a later
-- last_seen, the TTL it set is the later deadline and is kept: an older last_seen never shortens
-- a session, and the rule itself need not be known here.
local function apply(key, first)
  local seen = tonumber(ARGV[first])
  local ttl = ARGV[first + 1]
  local ndel = tonumber(ARGV[first + 2])
  local i = first + 3
  batched('HDEL', key, i, i + ndel - 1)
  batched('HSET', key, i + ndel, #ARGV)
  local stored = tonumber(redis.call('HMGET', key, 'm:s')[1]) or 0
  if seen < stored then
    return 1
  end
  if tonumber(ttl) <= 0 then
    redis.call('DEL', key)
    return 0
  end
  if seen > stored then
    redis.call('HSET', key, 'm:s', ARGV[first])
  end
  redis.call('PEXPIRE', key, ttl)
  return 1
end
