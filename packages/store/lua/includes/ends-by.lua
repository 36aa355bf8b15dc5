-- Writes, on the job's hash (KEYS[1] of every script that includes this), by when the attempt just placed is sure to
-- have ended: now (Redis's clock) + its maxRuntime + `overrunMs` (its start and stop grace). A job with no maxRuntime
-- has no bound, and an earlier attempt's is dropped. Backfill ahead of a gang reads it (placement.ts).
local function setEndsBy(maxRuntime, overrunMs)
  if not maxRuntime or maxRuntime == '' then
    redis.call('HDEL', KEYS[1], 'endsBy')
    return
  end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('HSET', KEYS[1], 'endsBy', now + tonumber(maxRuntime) * 1000 + tonumber(overrunMs))
end
