--[[
  Gives the attempt a BullMQ fetch handed this worker its GPUs, from the worker's own ledger, if the job's record
  still waits for exactly that attempt. Only this worker's finish (or its write-off) frees them again.

  Input:
    KEYS[1] job
    KEYS[2] ledger(worker)        GPU UUID -> hold ('' when free)
    KEYS[3] active(worker)        the holds placed on the worker
    KEYS[4] deadlines

    ARGV[1] job id
    ARGV[2] attempt
    ARGV[3] GPU mode: 'whole-host' or 'slots'
    ARGV[4] owner token (workerId|attempt)
    ARGV[5] hold (jobId#attempt)
    ARGV[6] the worker's GPU UUIDs, comma-separated, in device order
    ARGV[7] ms past its maxRuntime the attempt may keep the GPUs (its start and stop grace): with the job's
            maxRuntime, `endsBy` (Redis's clock) says by when it is sure to have ended, for backfill

  Output:
    {'ok', devices (comma-separated)}
    {'stale'}   the record moved on: the BullMQ job is to be finished
    {'nofit'}   the free GPUs are too few now
]]
-- @include take-gpus
-- @include ends-by
local f = redis.call('HMGET', KEYS[1], 'state', 'owner', 'attempt', 'gpus', 'maxRuntime')
local attempt = tonumber(ARGV[2])
if f[1] ~= 'queued' or (f[2] and f[2] ~= '') or (tonumber(f[3]) or 0) + 1 ~= attempt then return {'stale'} end
local devices = takeGpus(ARGV[3], ARGV[6], tonumber(f[4]) or 0, ARGV[5])
if not devices then return {'nofit'} end
redis.call('HSET', KEYS[1], 'attempt', attempt, 'owner', ARGV[4], 'devices', table.concat(devices, ','))
setEndsBy(f[5], ARGV[7])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[5])
return {'ok', table.concat(devices, ',')}
