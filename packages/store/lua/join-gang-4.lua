--[[
  Makes this worker a member of a gang attempt that is forming: reserves the member's GPUs in the worker's own ledger
  (under the attempt's hold, as a placed job's are) and adds the worker to the gang. The first member starts the
  reservation's clock; a gang that has not formed by its deadline takes no more members, and its members give their
  GPUs back (leave-gang). The member that makes the gang whole marks it complete; it then takes the BullMQ job and
  places the gang (assign-gang).

  Input:
    KEYS[1] job
    KEYS[2] ledger(worker)        GPU UUID -> hold ('' when free)
    KEYS[3] active(worker)        the holds placed on the worker
    KEYS[4] gang(hold)

    ARGV[1] attempt
    ARGV[2] GPU mode: 'whole-host' or 'slots'
    ARGV[3] hold (jobId#attempt)
    ARGV[4] the worker's GPU UUIDs, comma-separated, in device order
    ARGV[5] this member's owner token (workerId|attempt)
    ARGV[6] members the gang needs
    ARGV[7] ms the gang may take to form, from its first member
    ARGV[8] the address other members reach this worker at ('' where they reach its container by name)

  Output:
    {'joined', rank}     a member now; the gang still forms
    {'complete', rank}   this member made it whole: take the BullMQ job and assign it
    {'member', rank}     already a member
    {'formed'}           whole already, without this worker
    {'lapsed'}           its deadline passed before it formed: its members leave, then it forms anew
    {'stale'}            the record does not wait for this attempt
    {'nofit'}            the free GPUs are too few now
]]
-- @include take-gpus
local f = redis.call('HMGET', KEYS[1], 'state', 'owner', 'attempt', 'gpus')
local attempt = tonumber(ARGV[1])
if f[1] ~= 'queued' or (f[2] and f[2] ~= '') or (tonumber(f[3]) or 0) + 1 ~= attempt then return {'stale'} end
local g = redis.call('HMGET', KEYS[4], 'n', 'deadline', 'complete')
local n = tonumber(g[1]) or 0
for r = 0, n - 1 do
  if redis.call('HGET', KEYS[4], 'm' .. r) == ARGV[5] then return {'member', tostring(r)} end
end
if g[3] == '1' then return {'formed'} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if n > 0 and tonumber(g[2]) < now then return {'lapsed'} end
local devices = takeGpus(ARGV[2], ARGV[4], tonumber(f[4]) or 0, ARGV[3])
if not devices then return {'nofit'} end
redis.call('SADD', KEYS[3], ARGV[3])
redis.call('HSET', KEYS[4], 'm' .. n, ARGV[5], 'd' .. n, table.concat(devices, ','), 'a' .. n, ARGV[8], 'n', n + 1)
if n == 0 then redis.call('HSET', KEYS[4], 'deadline', now + tonumber(ARGV[7])) end
if n + 1 == tonumber(ARGV[6]) then
  redis.call('HSET', KEYS[4], 'complete', '1')
  return {'complete', tostring(n)}
end
return {'joined', tostring(n)}
