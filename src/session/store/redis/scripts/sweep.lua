-- KEYS[1] = key. ARGV: the expiry rule's cut-offs at this instant, computed by the proxy
-- (`expiry::Cutoffs`): a session is dead when m:e <= ARGV[1] or m:s <= ARGV[2] (-1 when idleness
-- never kills). Deletes the key if it has no TTL (every write of ours sets one, so it is debris)
-- or if its stored timestamps say it is dead; trims an owner index. Returns 1 if a session was
-- removed. Check and delete are one
-- script so a session refreshed meanwhile is not removed.
local key = KEYS[1]
local t = redis.call('TYPE', key)['ok']
if t == 'none' then
  return 0
end
if redis.call('PTTL', key) == -1 then
  redis.call('DEL', key)
  return 1
end
if t == 'zset' then
  -- An owner index: drop the members whose session is past its absolute expiry (the score).
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
  return 0
end
if t ~= 'hash' then
  return 0
end
local meta = redis.call('HMGET', key, 'm:s', 'm:e')
local seen = tonumber(meta[1])
local expires = tonumber(meta[2])
if not seen or not expires then
  redis.call('DEL', key)
  return 1
end
if expires <= tonumber(ARGV[1]) or seen <= tonumber(ARGV[2]) then
  redis.call('DEL', key)
  return 1
end
return 0
