--[[
  Records a worker's heartbeat, stamped with Redis's clock: every process judges silence against that one clock, so
  a worker whose host clock is off is neither written off while it beats nor kept when it stops.

  Input:
    KEYS[1] worker

  Output:
    the status the worker had before this beat: 'live', 'lost' (it was written off meanwhile) or 'unknown'
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local status = redis.call('HGET', KEYS[1], 'status')
redis.call('HSET', KEYS[1], 'heartbeat', now, 'status', 'live')
return status or 'unknown'
