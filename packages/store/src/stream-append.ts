// The one write path into a job's log and metric streams: appends, and keeps each stream within its caps in lines
// (or points) and in bytes, in the same atomic step.
import type { Redis } from 'ioredis';
import { runScript } from './scripts.js';

export interface AppendCaps {
  logLines: number;
  logBytes: number;
  metricPoints: number;
  metricBytes: number;
}

/** Consecutive lines of one output stream, packed as the log stream stores them. */
export interface PackedBatch {
  lines: number;
  packed: string;
}

// Log: each entry carries the job's lines (`s`) and bytes of text (`c`) written before it, and the count hash the
// totals (`lines`, `bytes`), so what the stream holds is the totals less the first entry's fields: one read of one
// entry, as the line cap alone needed. Past a cap the stream is cut to the share of entries that fits (the
// newest stay), and cut again while the first entry left says it still holds too much: entries of uneven size
// take a few rounds, each one XTRIM of the oldest. The first entry's `s` is the exact count of lines the caps
// dropped (the `truncated` marker), whichever cap dropped them.
// Metrics: entries are small and alike, so the bytes held are counted in the hash (`mbytes`) as points go in and
// out; past a cap the oldest points are read (their size is what the count needs) and cut with one XTRIM MINID.
// Under a steady flood each call reads about as many old points as it wrote, and one more.
// KEYS: logs, metrics, counts
// ARGV: lineCap, byteCap, pointCap, pointByteCap, attempt, nBatches, (nLines, packed)×nBatches,
//       nPoints, (nFields, fields…)×nPoints
// Returns: nothing.
const appendScript = `
local lineCap = tonumber(ARGV[1])
local byteCap = tonumber(ARGV[2])
local pointCap = tonumber(ARGV[3])
local pointByteCap = tonumber(ARGV[4])
local n = tonumber(ARGV[6])
local i = 7
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
      -- \`c\`: the bytes counted since then are all the count knows of.
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
`;

export async function appendToStreams(
  redis: Redis,
  streamKeys: { logs: string; metrics: string; counts: string },
  caps: AppendCaps,
  attempt: number,
  batches: readonly PackedBatch[],
  points: readonly (readonly (string | number)[])[],
): Promise<void> {
  const args: (string | number)[] = [
    caps.logLines,
    caps.logBytes,
    caps.metricPoints,
    caps.metricBytes,
    attempt,
    batches.length,
  ];
  for (const b of batches) args.push(b.lines, b.packed);
  args.push(points.length);
  for (const fields of points) args.push(fields.length, ...fields);
  await runScript(redis, appendScript, 3, streamKeys.logs, streamKeys.metrics, streamKeys.counts, ...args);
}
