-- bench/wrk_ingest.lua: wrk's script for the HTTP door's benchmark
-- (bench/run.sh, scenario http). Every request POSTs new events (no two
-- alike, so none is absorbed as a retry): one JSON object, or with
-- SLUICE_WRK_BATCH=N an NDJSON batch of N. SLUICE_WRK_DELAY_MS paces each
-- connection (a pause before each request). At the end it prints
-- key=value lines: requests answered 202 and otherwise, and the latency
-- percentiles of all answers (ms).
local batch = tonumber(os.getenv("SLUICE_WRK_BATCH") or "1")
local pause = tonumber(os.getenv("SLUICE_WRK_DELAY_MS") or "0")
local run = os.getenv("SLUICE_WRK_RUN") or "bench"
local threads = {}
local counter = 0

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  accepted = 0
  other = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = batch > 1 and "application/x-ndjson" or "application/json"
end

function request()
  local lines = {}
  for i = 1, batch do
    counter = counter + 1
    lines[i] = string.format(
      '{"run":"%s","thread":%d,"n":%d,"order_id":"o-%d-%d","amount":%d.%02d,"currency":"EUR"}',
      run, tid, counter, tid, counter, counter % 997, counter % 100)
  end
  return wrk.format(nil, nil, nil, table.concat(lines, "\n"))
end

function response(status, headers, body)
  if status == 202 then
    accepted = accepted + 1
  else
    other = other + 1
  end
end

if pause > 0 then
  function delay()
    return pause
  end
end

function done(summary, latency, requests)
  local acc, oth = 0, 0
  for _, t in ipairs(threads) do
    acc = acc + t:get("accepted")
    oth = oth + t:get("other")
  end
  local e = summary.errors
  io.write(string.format(
    "accepted_requests=%d\nother_requests=%d\nsocket_errors=%d\nseconds=%.3f\n" ..
    "p50_ms=%.2f\np95_ms=%.2f\np99_ms=%.2f\n",
    acc, oth, e.connect + e.read + e.write + e.timeout, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
