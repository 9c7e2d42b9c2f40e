-- wrk script: POST real rows as JSON bodies, rotating through a JSON-lines
-- file (one complete request body per line).
--   wrk -t1 -c16 -d10s -s bench/post_rows.lua URL -- /v1/predict BODIES.jsonl
-- An optional third argument, "Name: value", is sent as a header too (an
-- API key, say).
-- done() prints one JSON line: requests, req/s, latency percentiles (ms),
-- and the errors wrk counted (non-2xx/3xx answers are under "non_2xx").

local path = "/"
local requests = {}
local counter = 0
local next_id = 0

function setup(thread)
  -- Each thread starts at a different row.
  thread:set("id", next_id)
  next_id = next_id + 1
end

function init(args)
  path = args[1] or "/"
  local file = args[2]
  if file == nil then
    error("usage: ... -- PATH BODIES.jsonl")
  end
  local headers = {["Content-Type"] = "application/json"}
  if args[3] ~= nil then
    local name, value = args[3]:match("^([^:]+):%s*(.*)$")
    headers[name] = value
  end
  for line in io.lines(file) do
    if #line > 0 then
      -- Render every HTTP request once; request() only hands them out.
      table.insert(requests, wrk.format("POST", path, headers, line))
    end
  end
  if #requests == 0 then
    error("no request bodies in " .. file)
  end
  counter = (id or 0) * 7919
end

function request()
  counter = counter + 1
  return requests[(counter % #requests) + 1]
end

function done(summary, latency, _)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    '{"requests":%d,"duration_s":%.3f,"rps":%.2f,"p50_ms":%.3f,"p90_ms":%.3f,' ..
    '"p99_ms":%.3f,"mean_ms":%.3f,"max_ms":%.3f,"errors":%d,"non_2xx":%d,' ..
    '"connect_errors":%d,"timeouts":%d,"bytes":%d}\n',
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.mean / 1000, latency.max / 1000,
    e.connect + e.read + e.write + e.status + e.timeout, e.status,
    e.connect, e.timeout, summary.bytes))
end
