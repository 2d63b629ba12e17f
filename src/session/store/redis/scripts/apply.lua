-- Shared by the update and regenerate scripts: apply the delta, advance `last_seen` (never
-- backwards), and reset the TTL from the stored timestamps. Returns 1, or 0 after deleting a
-- session whose deadline has passed.
--
-- ARGV layout from `first`: now, last_seen, idle_ms (0 = none), n_delete, n_delete field
-- names, then field/value pairs to set.
local function apply(key, first)
  local now = tonumber(ARGV[first])
  local seen_arg = ARGV[first + 1]
  local idle = tonumber(ARGV[first + 2])
  local ndel = tonumber(ARGV[first + 3])
  local i = first + 4
  batched('HDEL', key, i, i + ndel - 1)
  batched('HSET', key, i + ndel, #ARGV)
  local meta = redis.call('HMGET', key, 'm:s', 'm:e')
  local seen = tonumber(meta[1]) or 0
  local expires = tonumber(meta[2]) or 0
  if tonumber(seen_arg) > seen then
    redis.call('HSET', key, 'm:s', seen_arg)
    seen = tonumber(seen_arg)
  end
  local deadline = expires
  if idle > 0 and seen + idle < deadline then
    deadline = seen + idle
  end
  local ttl = deadline - now
  if ttl <= 0 then
    redis.call('DEL', key)
    return 0
  end
  redis.call('PEXPIRE', key, string.format('%d', ttl))
  return 1
end
