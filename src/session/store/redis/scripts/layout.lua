-- Shared by the scripts that must not mix layouts: the layout `key` holds, as the proxy names it
-- (`2` sealed, marked by `m:v`; `1` readable, unmarked). HMGET, not HGET, to keep the script's
-- commands to the documented list.
local function layout(key)
  if redis.call('HMGET', key, 'm:v')[1] == '2' then
    return '2'
  end
  return '1'
end
