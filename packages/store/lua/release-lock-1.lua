--[[
  Releases a short lock only if the caller still holds it (it may have expired and been taken by another).

  Input:
    KEYS[1] the lock
    ARGV[1] the holder's random token

  Output:
    1 when released, 0 when the lock was not (or no longer) this holder's
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
