--[[
  Records a new job as queued, unless the owner's Idempotency-Key names an earlier job or one of the owner's quotas
  would be passed. The quotas are read from the user record here, so a limit an admin just changed applies to the
  next submit, and the check and the insert are one step. The caller then adds the job's BullMQ job; the job's id
  goes into the `unqueued` outbox until the housekeeper has seen that add.

  Input:
    KEYS[1]  job                      the new job's hash
    KEYS[2]  users                    user id -> User JSON (quotas)
    KEYS[3]  jobsAll
    KEYS[4]  jobsInState(queued)
    KEYS[5]  jobSeq
    KEYS[6]  deadlines
    KEYS[7]  unqueued
    KEYS[8]  jobsOfUser(user)
    KEYS[9]  jobsOfUserInState(user, queued)
    KEYS[10] userUsage(user)
    KEYS[11] idempotency(user, key)   any key when ARGV[6] is ''

    ARGV[1]  the JobRecord JSON
    ARGV[2]  job id
    ARGV[3]  GPUs asked for
    ARGV[4]  queue deadline (ms), '' for none
    ARGV[5]  user id
    ARGV[6]  Idempotency-Key, '' for none
    ARGV[7]  sha256 of the request body
    ARGV[8]  BullMQ priority
    ARGV[9]  seconds an Idempotency-Key is kept
    ARGV[10] hosts the job spans (its GPUs count once per host towards the quota)
    ARGV[11] its spec's maxRuntime (s), '' for none: placement bounds a placed attempt by it (backfill)

  Output:
    {'ok'}
    {'no-user'}                                   the owner is not a user
    {'idem', earlier job id, its body hash, this body hash}
    {'quota', 'queuedJobs' | 'gpus', limit, current}
]]
local owner = redis.call('HGET', KEYS[2], ARGV[5])
if not owner then return {'no-user'} end
local quotas = cjson.decode(owner).quotas or {}
local maxQueued = type(quotas.queuedJobs) == 'number' and quotas.queuedJobs or nil
local maxGpus = type(quotas.gpus) == 'number' and quotas.gpus or nil
if ARGV[6] ~= '' then
  local seen = redis.call('GET', KEYS[11])
  if seen then
    local sep = string.find(seen, '|', 1, true)
    return {'idem', string.sub(seen, 1, sep - 1), string.sub(seen, sep + 1), ARGV[7]}
  end
end
if maxQueued then
  local queued = redis.call('ZCARD', KEYS[9])
  if queued + 1 > maxQueued then return {'quota', 'queuedJobs', tostring(maxQueued), tostring(queued)} end
end
local asked = tonumber(ARGV[3]) * tonumber(ARGV[10])
local gpus = tonumber(redis.call('HGET', KEYS[10], 'gpus') or '0')
if maxGpus and gpus + asked > maxGpus then
  return {'quota', 'gpus', tostring(maxGpus), tostring(gpus)}
end
local seq = redis.call('INCR', KEYS[5])
redis.call('HSET', KEYS[1], 'json', ARGV[1], 'state', 'queued', 'seq', seq, 'ver', 0, 'gpus', ARGV[3],
  'nodes', ARGV[10], 'attempt', 0, 'user', ARGV[5], 'priority', ARGV[8])
if ARGV[11] ~= '' then redis.call('HSET', KEYS[1], 'maxRuntime', ARGV[11]) end
redis.call('ZADD', KEYS[3], seq, ARGV[2])
redis.call('ZADD', KEYS[4], seq, ARGV[2])
redis.call('ZADD', KEYS[8], seq, ARGV[2])
redis.call('ZADD', KEYS[9], seq, ARGV[2])
redis.call('HINCRBY', KEYS[10], 'gpus', asked)
if ARGV[4] ~= '' then redis.call('ZADD', KEYS[6], ARGV[4], ARGV[2]) end
local t = redis.call('TIME')
redis.call('ZADD', KEYS[7], t[1] * 1000 + math.floor(t[2] / 1000), ARGV[2])
if ARGV[6] ~= '' then redis.call('SET', KEYS[11], ARGV[2] .. '|' .. ARGV[7], 'EX', ARGV[9]) end
return {'ok'}
