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

// The bytes a stream holds are counted in the job's count hash (`bytes` for the log, `mbytes` for the metrics) as
// entries go in and out, so the cap check is one comparison; Redis has no cheap way to ask a stream's size.
// Past a cap the oldest entries are read (their text, which the count needs) and cut with one XTRIM MINID, until
// the stream is back within both caps; the newest entry always stays. Under a steady flood each call reads about
// as much old text as it wrote, so the cost stays proportional to what comes in.
// A log entry's `s` field counts the job's lines before it, so the first entry held says exactly how many lines
// the caps dropped (the `truncated` marker), whichever cap dropped them.
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
  local newest
  for _ = 1, n do
    newest = redis.call('XADD', KEYS[1], '*', 'l', ARGV[i + 1], 's', seq)
    seq = seq + tonumber(ARGV[i])
    added = added + tonumber(ARGV[i])
    bytes = bytes + #ARGV[i + 1]
    i = i + 2
  end
  if added > 0 then redis.call('HINCRBY', KEYS[3], ARGV[5], added) end
  if bytes > byteCap or seq > lineCap then
    local from = '-'
    local keep
    while not keep do
      local oldest = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', 16)
      if #oldest == 0 then break end
      for _, e in ipairs(oldest) do
        local f = e[2]
        if e[1] == newest then keep = e[1] break end
        -- Other entries (an earlier run's end) hold no text and go with the lines before them.
        if f[1] == 'l' then
          if bytes <= byteCap and seq - tonumber(f[4]) <= lineCap then keep = e[1] break end
          bytes = bytes - #f[2]
        end
      end
      from = '(' .. oldest[#oldest][1]
    end
    if keep then redis.call('XTRIM', KEYS[1], 'MINID', keep) end
    -- A stream written before bytes were counted holds more than its count says; the count must not go below 0.
    if bytes < 0 then bytes = 0 end
  end
  redis.call('HSET', KEYS[3], 'lines', seq, 'bytes', bytes)
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
    while not keep do
      local oldest = redis.call('XRANGE', KEYS[2], from, '+', 'COUNT', 64)
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
