-- KEYS[1] = an owner's index (a sorted set: member = session handle, score = the session's
-- absolute expiry in ms). ARGV: score, member, ttl_ms (that expiry, from the proxy's clock).
-- The set lives at least as long as its longest-lived member: its TTL only ever grows.
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
