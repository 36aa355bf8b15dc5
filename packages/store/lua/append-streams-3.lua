--[[
  The one write path into a job's log and metric streams: appends, and keeps each stream within its caps in lines
  (or points) and in bytes, in the same atomic step.

  Log: each entry carries the job's lines (`s`) and bytes of text (`c`) written before it, and the count hash the
  totals (`lines`, `bytes`), so what the stream holds is the totals less the first entry's fields: one read of one
  entry. Past a cap the stream is cut to the share of entries that fits (the newest stay), and cut again while the
  first entry left says it still holds too much: entries of uneven size take a few rounds, each one XTRIM of the
  oldest. The first entry's `s` is the exact count of lines the caps dropped (the `truncated` marker), whichever
  cap dropped them.
  Metrics: entries are small and alike, so the bytes held are counted in the hash (`mbytes`) as points go in and
  out; past a cap the oldest points are read (their size is what the count needs) and cut with one XTRIM MINID.
  Under a steady flood each call reads about as many old points as it wrote, and one more.
  A writer that retries (its reply was lost: Redis restarted, the connection cut) says how many lines of the
  attempt were stored before its call; a call whose lines are already there changes nothing, so a retry never
  stores a batch twice. The writer may also leave a mark, its place in the container's own log, stored with the
  lines it covers: where a worker that takes the container over goes on reading.

  Input:
    KEYS[1] logs(job)
    KEYS[2] metrics(job)
    KEYS[3] logCount(job)         also counts lines per attempt, under the attempt's number

    ARGV[1] line cap
    ARGV[2] log byte cap
    ARGV[3] metric point cap
    ARGV[4] metric byte cap
    ARGV[5] attempt
    ARGV[6] lines of the attempt stored before this call as the writer counts them, or -1 to append unchecked
    ARGV[7] the writer's mark, stored under `mark:<attempt>` in KEYS[3]; empty for none
    ARGV[8] number of log batches, then (lines in the batch, packed text) for each
    then    number of metric points, then (number of fields, fields...) for each

  Output:
    the attempt's stored lines before this call, negated when the call changed nothing (its lines were there)
]]
local lineCap = tonumber(ARGV[1])
local byteCap = tonumber(ARGV[2])
local pointCap = tonumber(ARGV[3])
local pointByteCap = tonumber(ARGV[4])
local from = tonumber(ARGV[6])
local n = tonumber(ARGV[8])
local i = 9
local before = tonumber(redis.call('HGET', KEYS[3], ARGV[5]) or '0')
if from >= 0 and n > 0 and before > from then return -before end
if ARGV[7] ~= '' then redis.call('HSET', KEYS[3], 'mark:' .. ARGV[5], ARGV[7]) end
if n > 0 then
  local seq = tonumber(redis.call('HGET', KEYS[3], 'lines') or '0')
  local bytes = tonumber(redis.call('HGET', KEYS[3], 'bytes') or '0')
  local added = 0
  for _ = 1, n do
    redis.call('XADD', KEYS[1], '*', 'l', ARGV[i + 1], 's', seq, 'c', bytes)
    seq = seq + tonumber(ARGV[i])
    added = added + tonumber(ARGV[i])
    bytes = bytes + #ARGV[i + 1]
    i = i + 2
  end
  if added > 0 then redis.call('HINCRBY', KEYS[3], ARGV[5], added) end
  redis.call('HSET', KEYS[3], 'lines', seq, 'bytes', bytes)
  if bytes > byteCap or seq > lineCap then
    local len = redis.call('XLEN', KEYS[1])
    while len > 1 do
      local f = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1][2]
      local keep = len - 1
      -- An entry without text (an earlier run's end) just goes. One written before bytes were counted has no
      -- `c`: the bytes counted since then are all the count knows of.
      if f[1] == 'l' then
        local heldLines = seq - tonumber(f[4])
        local heldBytes = bytes - tonumber(f[6] or '0')
        if heldLines <= lineCap and heldBytes <= byteCap then break end
        local share = 1
        if heldLines > lineCap then share = lineCap / heldLines end
        if heldBytes > byteCap then share = math.min(share, byteCap / heldBytes) end
        keep = math.max(1, math.min(len - 1, math.floor(len * share)))
      end
      redis.call('XTRIM', KEYS[1], 'MAXLEN', keep)
      len = keep
    end
  end
end
local m = tonumber(ARGV[i])
i = i + 1
if m > 0 then
  local bytes = tonumber(redis.call('HGET', KEYS[3], 'mbytes') or '0')
  local newest
  for _ = 1, m do
    local c = tonumber(ARGV[i])
    newest = redis.call('XADD', KEYS[2], '*', unpack(ARGV, i + 1, i + c))
    for j = i + 1, i + c do bytes = bytes + #ARGV[j] end
    i = i + c + 1
  end
  local len = redis.call('XLEN', KEYS[2])
  if bytes > pointByteCap or len > pointCap then
    local from = '-'
    local keep
    local count = m + 1
    while not keep do
      local oldest = redis.call('XRANGE', KEYS[2], from, '+', 'COUNT', count)
      count = count * 2
      if #oldest == 0 then break end
      for _, e in ipairs(oldest) do
        if e[1] == newest or (bytes <= pointByteCap and len <= pointCap) then keep = e[1] break end
        for _, v in ipairs(e[2]) do bytes = bytes - #v end
        len = len - 1
      end
      from = '(' .. oldest[#oldest][1]
    end
    if keep then redis.call('XTRIM', KEYS[2], 'MINID', keep) end
    if bytes < 0 then bytes = 0 end
  end
  redis.call('HSET', KEYS[3], 'mbytes', bytes)
end
return before
