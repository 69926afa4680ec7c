-- wrk script: one fixed request, summary printed as one JSON line.
-- Arguments after `--`: METHOD PATH [BODY] [AUTHORIZATION] [close]
local method, path, body, auth, close

function init(args)
  method = args[1] or "GET"
  path = args[2] or "/"
  body = args[3]
  if body == "" then body = nil end
  auth = args[4]
  close = args[5] == "close"
end

function request()
  local headers = {}
  if body then headers["Content-Type"] = "application/x-www-form-urlencoded" end
  if auth and auth ~= "" then headers["Authorization"] = auth end
  if close then headers["Connection"] = "close" end
  return wrk.format(method, path, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, ' ..
    '"p99_us": %d, "max_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
