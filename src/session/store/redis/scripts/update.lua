-- KEYS[1] = key. ARGV[1] = the layout the proxy writes (`1` readable, `2` sealed), then ARGV as
-- for `apply` from 2. Returns 1 stored, 0 gone, 3 when the hash holds the other layout: the delta
-- would mix them, so the proxy sends the whole session to `rewrite` instead.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
if layout(KEYS[1]) ~= ARGV[1] then
  return 3
end
return apply(KEYS[1], 2)
