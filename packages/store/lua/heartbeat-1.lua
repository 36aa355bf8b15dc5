--[[
  Records a worker's heartbeat.

  Input:
    KEYS[1] worker
    ARGV[1] now (ms)

  Output:
    the status the worker had before this beat: 'live', 'lost' (it was written off meanwhile) or 'unknown'
]]
local status = redis.call('HGET', KEYS[1], 'status')
redis.call('HSET', KEYS[1], 'heartbeat', ARGV[1], 'status', 'live')
return status or 'unknown'
