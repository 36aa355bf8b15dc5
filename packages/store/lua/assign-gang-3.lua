--[[
  Places a gang attempt that formed, once its last member took its BullMQ job: the record's owner becomes the head
  (rank 0, the first member) and its devices the head's, as assign-gpus does for one host; every member's GPUs are
  already reserved in its own ledger. The members learn of it from the record: the script wakes them itself, so
  the wake is on its way before the caller has the reply.

  Input:
    KEYS[1] job
    KEYS[2] gang(hold)
    KEYS[3] deadlines

    ARGV[1] job id
    ARGV[2] attempt
    ARGV[3] the wake channel (a channel, not a key)
    ARGV[4] ms past its maxRuntime the attempt may keep the GPUs (see assign-gpus)

  Output:
    {'ok', field, value, …}   placed: the gang's hash, to start the caller's member from
    {'stale'}         the record moved on: the BullMQ job is to be finished
    {'nofit'}         the gang is not whole (it broke up): the BullMQ job goes back to wait
]]
-- @include ends-by
local f = redis.call('HMGET', KEYS[1], 'state', 'owner', 'attempt', 'maxRuntime')
local attempt = tonumber(ARGV[2])
if f[1] ~= 'queued' or (f[2] and f[2] ~= '') or (tonumber(f[3]) or 0) + 1 ~= attempt then return {'stale'} end
local g = redis.call('HMGET', KEYS[2], 'n', 'complete', 'm0', 'd0')
if g[2] ~= '1' then return {'nofit'} end
redis.call('HSET', KEYS[1], 'attempt', attempt, 'owner', g[3], 'devices', g[4] or '')
setEndsBy(f[4], ARGV[4])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('PUBLISH', ARGV[3], '1')
local reply = redis.call('HGETALL', KEYS[2])
table.insert(reply, 1, 'ok')
return reply
