--[[
  Lists an uploaded artifact only if the attempt that sent it owns the job now, in a state where it may upload;
  checked in the same step as the write, so a written-off attempt cannot slip in between a check and the write. The
  job hash's `attempt` is advanced by placement the moment a new attempt is claimed and `state` by every
  transition, so an attempt that was written off (queued again), superseded (a higher attempt) or finished (a
  terminal state) is out.

  Input:
    KEYS[1] job
    KEYS[2] artifacts(job)

    ARGV[1] attempt
    ARGV[2] artifact path
    ARGV[3] Artifact JSON

  Output:
    the JSON it replaced, '' when none, or 0 when fenced (nothing written)
]]
local f = redis.call('HMGET', KEYS[1], 'state', 'attempt')
local state = f[1]
if f[2] ~= ARGV[1] or not (state == 'pulling' or state == 'starting' or state == 'running' or state == 'uploading') then
  return 0
end
local old = redis.call('HGET', KEYS[2], ARGV[2]) or ''
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return old
