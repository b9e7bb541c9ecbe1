-- wrk script for bench/deploy.sh: counts every answer by second (wall clock) and by the version
-- named in the body (`{"hello":"world","version":"v1"}`), keeps the first failures with their
-- time in milliseconds, and prints machine-readable lines at the end:
--   RESULT key value            totals (requests, non-2xx, socket errors, latency percentiles)
--   SECOND epoch label count    answers in that second: a version, or "fail-STATUS"
--   FAIL epoch_ms status body   the first failures of each thread (at most 20 per thread)
-- A socket error (connect, read, write, timeout) never reaches `response`: wrk counts those in C,
-- so they appear in the totals only, without a time.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock, bench_timespec *tp);
]]
local now = ffi.new("bench_timespec")

local function wall_ms()
  ffi.C.clock_gettime(0, now) -- CLOCK_REALTIME
  return tonumber(now.tv_sec) * 1000 + math.floor(tonumber(now.tv_nsec) / 1000000)
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  seconds = {}    -- "epoch|label" -> count (flat, so thread:get copies it simply)
  failures = {}   -- "epoch_ms status body", the first few
  non2xx = 0
end

function response(status, headers, body)
  local ms = wall_ms()
  local label
  if status >= 200 and status < 300 then
    label = (body and body:match('"version":"([^"]*)"')) or "other"
  else
    non2xx = non2xx + 1
    label = "fail-" .. status
    if #failures < 20 then
      local text = (body or ""):gsub("%s+", " "):sub(1, 300)
      table.insert(failures, string.format("%d %d %s", ms, status, text))
    end
  end
  local key = math.floor(ms / 1000) .. "|" .. label
  seconds[key] = (seconds[key] or 0) + 1
end

function done(summary, latency, requests)
  local total_non2xx = 0
  local merged = {}
  for _, thread in ipairs(threads) do
    total_non2xx = total_non2xx + (thread:get("non2xx") or 0)
    for key, count in pairs(thread:get("seconds") or {}) do
      merged[key] = (merged[key] or 0) + count
    end
    for _, line in ipairs(thread:get("failures") or {}) do
      io.write("FAIL ", line, "\n")
    end
  end
  for key, count in pairs(merged) do
    local second, label = key:match("^(%d+)|(.*)$")
    io.write(string.format("SECOND %s %s %d\n", second, label, count))
  end
  local e = summary.errors
  local seconds_run = summary.duration / 1e6
  io.write(string.format("RESULT requests %d\n", summary.requests))
  io.write(string.format("RESULT duration_s %.2f\n", seconds_run))
  io.write(string.format("RESULT rps %.0f\n", summary.requests / seconds_run))
  io.write(string.format("RESULT non2xx %d\n", total_non2xx))
  io.write(string.format("RESULT connect %d\nRESULT read %d\nRESULT write %d\nRESULT timeout %d\n",
    e.connect, e.read, e.write, e.timeout))
  for _, p in ipairs({ 50, 90, 99, 99.9 }) do
    io.write(string.format("RESULT p%s_ms %.2f\n", tostring(p), latency:percentile(p) / 1000))
  end
  io.write(string.format("RESULT max_ms %.2f\n", latency.max / 1000))
end
