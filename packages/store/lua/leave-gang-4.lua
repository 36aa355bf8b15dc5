--[[
  Gives back what a worker reserved for a gang attempt that will not run as it is: one whose deadline passed before
  it formed, or whose record no longer waits for it (cancelled, expired). A member that leaves breaks the gang up:
  the gang's record goes, and the other members, finding themselves in no gang, give their GPUs back too. A gang
  that formed, or was placed, is left alone.

  Input:
    KEYS[1] job
    KEYS[2] ledger(worker)
    KEYS[3] active(worker)
    KEYS[4] gang(hold)

    ARGV[1] attempt
    ARGV[2] hold (jobId#attempt)
    ARGV[3] this member's owner token (workerId|attempt)

  Output:
    {'left'}      the worker's GPUs for the hold are free again
    {'waiting'}   the gang still forms within its deadline (or formed and is being placed): nothing changed
    {'placed'}    the record runs this attempt: nothing changed
]]
local f = redis.call('HMGET', KEYS[1], 'state', 'owner', 'attempt')
local attempt = tonumber(ARGV[1])
local waits = f[1] == 'queued' and (not f[2] or f[2] == '') and (tonumber(f[3]) or 0) + 1 == attempt
if f[2] and f[2] ~= '' and tonumber(f[3]) == attempt then return {'placed'} end
local g = redis.call('HMGET', KEYS[4], 'n', 'deadline', 'complete')
local n = tonumber(g[1]) or 0
local mine = false
for r = 0, n - 1 do
  if redis.call('HGET', KEYS[4], 'm' .. r) == ARGV[3] then mine = true end
end
if waits and mine then
  if g[3] == '1' then return {'waiting'} end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if tonumber(g[2]) >= now then return {'waiting'} end
end
local ledger = redis.call('HGETALL', KEYS[2])
for i = 1, #ledger, 2 do
  if ledger[i + 1] == ARGV[2] then redis.call('HSET', KEYS[2], ledger[i], '') end
end
redis.call('SREM', KEYS[3], ARGV[2])
if mine then redis.call('DEL', KEYS[4]) end
return {'left'}
