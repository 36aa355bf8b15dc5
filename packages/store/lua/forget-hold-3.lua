--[[
  Drops a worker's hold on an attempt that ended or moved on without it: its GPUs and its slot, and the job's owner
  when that is still this attempt.

  Input:
    KEYS[1] ledger(worker)
    KEYS[2] active(worker)
    KEYS[3] job

    ARGV[1] hold (jobId#attempt)
    ARGV[2] owner token (workerId|attempt)

  Output:
    1
]]
local ledger = redis.call('HGETALL', KEYS[1])
for i = 1, #ledger, 2 do
  if ledger[i + 1] == ARGV[1] then redis.call('HSET', KEYS[1], ledger[i], '') end
end
redis.call('SREM', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[3], 'owner') == ARGV[2] then redis.call('HSET', KEYS[3], 'owner', '', 'devices', '') end
return 1
