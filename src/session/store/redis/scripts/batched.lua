-- Shared by every write script: runs `cmd key ARGV[from..=to]` in slices. Lua's `unpack` refuses
-- more than ~8,000 values (LUAI_MAXCSTACK), and a Delete may name any number of keys. The slice is
-- even, so HSET's field/value pairs never straddle two calls.
local function batched(cmd, key, from, to)
  while from <= to do
    local last = math.min(from + 999, to)
    redis.call(cmd, key, unpack(ARGV, from, last))
    from = last + 1
  end
end
