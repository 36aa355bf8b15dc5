--[[
  Marks a worker lost when its last heartbeat is older than the cutoff, once.

  Input:
    KEYS[1] worker
    ARGV[1] cutoff (ms)

  Output:
    1 for the one caller that marked it, 0 otherwise
]]
local beat = tonumber(redis.call('HGET', KEYS[1], 'heartbeat') or '0')
if beat >= tonumber(ARGV[1]) or redis.call('HGET', KEYS[1], 'status') == 'lost' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'lost')
return 1
