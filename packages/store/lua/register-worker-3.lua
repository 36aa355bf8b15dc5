--[[
  Registers a worker, or registers it again after a restart: the ledger keeps the holders of the GPUs the worker
  still has and forgets the GPUs it no longer has. The first heartbeat is stamped with Redis's clock, as every later
  one is.

  Input:
    KEYS[1] workers
    KEYS[2] worker
    KEYS[3] ledger(worker)

    ARGV[1]    worker id
    ARGV[2]    the static WorkerInfo JSON
    ARGV[3...] the worker's GPU UUIDs

  Output:
    1
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'json', ARGV[2], 'heartbeat', now, 'status', 'live')
local keep = {}
for i = 3, #ARGV do keep[ARGV[i]] = true end
local ledger = redis.call('HGETALL', KEYS[3])
for i = 1, #ledger, 2 do
  if not keep[ledger[i]] then redis.call('HDEL', KEYS[3], ledger[i]) end
end
for i = 3, #ARGV do redis.call('HSETNX', KEYS[3], ARGV[i], '') end
return 1
