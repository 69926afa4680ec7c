-- wrk script for the SCIM benchmark (bench/scim_bench.py).
-- Arguments after `--`: MODE AUTHORIZATION [NAMES_FILE]
--   create: POST /scim/v2/Users with a new userName on every request
--   get:    GET /scim/v2/Users?filter=userName eq "<name>", cycling through NAMES_FILE
local mode, auth, names, counter, prefix

function init(args)
  mode = args[1] or "create"
  auth = args[2] or ""
  counter = 0
  math.randomseed(os.time())
  prefix = string.format("%d%d", os.time(), math.random(1, 1000000000))
  if mode == "get" then
    names = {}
    for line in io.lines(args[3]) do
      if line ~= "" then table.insert(names, line) end
    end
  end
end

function request()
  counter = counter + 1
  local headers = {["Authorization"] = auth, ["Accept"] = "application/scim+json"}
  if mode == "create" then
    headers["Content-Type"] = "application/scim+json"
    local name = "b" .. prefix .. "-" .. counter .. "@bench.example"
    local body = '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],' ..
      '"userName":"' .. name .. '","externalId":"' .. prefix .. "-" .. counter .. '",' ..
      '"name":{"givenName":"Bench","familyName":"User ' .. counter .. '"},' ..
      '"emails":[{"value":"' .. name .. '","type":"work","primary":true}],"active":true}'
    return wrk.format("POST", "/scim/v2/Users", headers, body)
  end
  local name = names[(counter % #names) + 1]
  return wrk.format("GET", "/scim/v2/Users?filter=userName%20eq%20%22" .. name .. "%22",
                    headers)
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
