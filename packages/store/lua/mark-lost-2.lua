--[[
  Writes a worker off when Redis's clock says it has been silent longer than the lost-after period, under the sweep
  lease. The lease is taken here when it is free and renewed when the caller holds it, so the check of the holder,
  the decision and the write are one step: a sweeper whose lease lapsed and went to another process writes nothing.

  Input:
    KEYS[1] the sweep lease
    KEYS[2] worker

    ARGV[1] the sweeper's token
    ARGV[2] how long the lease lasts (ms)
    ARGV[3] the lost-after period (ms)

  Output:
    'busy'     another sweeper holds the lease; nothing was looked at
    'live'     the worker beat within the period
    'lost'     written off by this call
    'was-lost' written off before
]]
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 'busy' end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if redis.call('HGET', KEYS[2], 'status') == 'lost' then return 'was-lost' end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local beat = tonumber(redis.call('HGET', KEYS[2], 'heartbeat') or '0')
if now - beat <= tonumber(ARGV[3]) then return 'live' end
redis.call('HSET', KEYS[2], 'status', 'lost')
return 'lost'
