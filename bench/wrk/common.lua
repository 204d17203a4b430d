-- Shared by the benchmark scripts: status counting and a JSON summary line for bench/run.py.
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function count_status(status)
  if status >= 200 and status < 300 then
    ok = (ok or 0) + 1
  else
    bad = (bad or 0) + 1
    if bad <= 3 then io.stderr:write("non-2xx: " .. status .. "\n") end
  end
end

function response(status, headers, body)
  count_status(status)
end

function done(summary, latency, requests)
  local ok_total, bad_total, resolved_total = 0, 0, 0
  for _, thread in ipairs(threads) do
    ok_total = ok_total + (thread:get("ok") or 0)
    bad_total = bad_total + (thread:get("bad") or 0)
    resolved_total = resolved_total + (thread:get("resolved") or 0)
  end
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "ok": %d, "bad": %d, "resolved": %d, '
      .. '"socket_errors": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, ok_total, bad_total, resolved_total,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
