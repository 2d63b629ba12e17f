-- KEYS[1] = key. ARGV: ttl_ms (by the proxy's expiry rule), created, last_seen, expires, then
-- field/value pairs (a sealed session's among them the layout marker `m:v`).
-- Returns 1 stored, 2 collision (NX semantics: an existing key is never overwritten).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 2
end
redis.call('HSET', KEYS[1], 'm:c', ARGV[2], 'm:s', ARGV[3], 'm:e', ARGV[4])
batched('HSET', KEYS[1], 5, #ARGV)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
