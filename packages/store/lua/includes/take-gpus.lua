-- Takes the GPUs a placement gives from the worker's ledger (KEYS[2] of every script that includes this) and writes
-- the hold on them: none for a CPU job; in whole-host mode every GPU, and only when all are free; else the first
-- `need` free ones in device order. Answers the devices taken, or nil when too few are free now.
local function takeGpus(mode, orderCsv, need, hold)
  local order = {}
  for u in string.gmatch(orderCsv, '[^,]+') do order[#order + 1] = u end
  local free = {}
  for _, u in ipairs(order) do
    local holder = redis.call('HGET', KEYS[2], u)
    if not holder or holder == '' then free[#free + 1] = u end
  end
  local take = nil
  if need == 0 then take = 0
  elseif mode == 'whole-host' then if #free == #order and need <= #order then take = #order end
  elseif need <= #free then take = need end
  if not take then return nil end
  local devices = {}
  for i = 1, take do
    devices[i] = free[i]
    redis.call('HSET', KEYS[2], devices[i], hold)
  end
  return devices
end
