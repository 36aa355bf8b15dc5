--[[
  Rewrites a job's record only if nobody wrote it since it was read (ver), moves it between the state indexes (the
  deployment's and its user's), and applies the guard's conditions and side effects in the same step. A terminal
  state also closes the job's log and metric streams, so a follower never sees an ended job without its end entry,
  and gives back the GPUs the user's quota counted.

  Input:
    KEYS[1]  job
    KEYS[2]  jobsInState(old state)
    KEYS[3]  jobsInState(new state)
    KEYS[4]  logs(job)
    KEYS[5]  deadlines
    KEYS[6]  ledger(releasing worker)        any key when ARGV[8] is ''
    KEYS[7]  active(releasing worker)        any key when ARGV[8] is ''
    KEYS[8]  metrics(job)
    KEYS[9]  stateChanges
    KEYS[10] unqueued
    KEYS[11] jobsOfUserInState(user, old state)
    KEYS[12] jobsOfUserInState(user, new state)
    KEYS[13] userUsage(user)

    ARGV[1]  the new JobRecord JSON
    ARGV[2]  new state
    ARGV[3]  job id
    ARGV[4]  '1' when the new state is terminal
    ARGV[5]  ver read with the record
    ARGV[6]  owner token the record must hold ('' for no such condition)
    ARGV[7]  '1': only while still waiting (queued and placed on no worker)
    ARGV[8]  hold (jobId#attempt) to release from the worker's ledger and active set, '' for none
    ARGV[9]  when (ms) a re-queued job may be placed, '' when it is not re-queued
    ARGV[10] attempt
    ARGV[11] reason, '' for none
    ARGV[12] '1' when the old state was terminal

  Output:
     1  written
    -1  no such job
    -2  written by someone else since it was read (read again and retry)
    -3  not held by ARGV[6]
    -4  no longer waiting
]]
local f = redis.call('HMGET', KEYS[1], 'seq', 'ver', 'owner', 'user', 'gpus', 'state', 'nodes')
if not f[1] then return -1 end
if (f[2] or '0') ~= ARGV[5] then return -2 end
if ARGV[6] ~= '' and f[3] ~= ARGV[6] then return -3 end
if ARGV[7] == '1' and (f[6] ~= 'queued' or (f[3] and f[3] ~= '')) then return -4 end
if ARGV[7] == '1' then redis.call('ZREM', KEYS[5], ARGV[3]) end
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], 'json', ARGV[1], 'state', ARGV[2], 'ver', tonumber(ARGV[5]) + 1)
redis.call('ZADD', KEYS[3], f[1], ARGV[3])
local user = f[4] or ''
if user ~= '' then
  redis.call('ZREM', KEYS[11], ARGV[3])
  redis.call('ZADD', KEYS[12], f[1], ARGV[3])
  local gpus = tonumber(f[5] or '0') * tonumber(f[7] or '1')
  -- (never HINCRBY by -0: Redis refuses it as not an integer, and a script error stops it halfway)
  if ARGV[4] == '1' and ARGV[12] == '0' and gpus > 0 then
    redis.call('HINCRBY', KEYS[13], 'gpus', -gpus)
  end
end
if ARGV[8] ~= '' then
  local ledger = redis.call('HGETALL', KEYS[6])
  for i = 1, #ledger, 2 do
    if ledger[i + 1] == ARGV[8] then redis.call('HSET', KEYS[6], ledger[i], '') end
  end
  redis.call('SREM', KEYS[7], ARGV[8])
  redis.call('HSET', KEYS[1], 'owner', '', 'devices', '')
end
if ARGV[9] ~= '' then
  redis.call('HSET', KEYS[1], 'notBefore', ARGV[9])
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[10], t[1] * 1000 + math.floor(t[2] / 1000), ARGV[3])
end
if ARGV[4] == '1' then
  redis.call('XADD', KEYS[4], '*', 'end', ARGV[2])
  redis.call('XADD', KEYS[8], '*', 'end', ARGV[2])
end
redis.call('XADD', KEYS[9], 'MAXLEN', '~', 100000, '*', 'j', ARGV[3], 's', ARGV[2], 'a', ARGV[10], 'r', ARGV[11], 'u', user)
return 1
