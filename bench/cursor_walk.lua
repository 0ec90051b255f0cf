-- wrk script: walks GET /api/v1/certificates?status=Active&owner_id=…&page_size=50 by following
-- next_cursor; when a walk ends, the next one starts for the next owner.
local key = os.getenv("CERTCTL_BENCH_KEY")
local owners = { "o-alice", "o-bob", "o-carol", "o-dave" }
local owner_index = 1
local cursor = nil

local function base()
  return "/api/v1/certificates?status=Active&owner_id=" .. owners[owner_index] .. "&page_size=50"
end

request = function()
  local path = base()
  if cursor then
    path = path .. "&cursor=" .. cursor
  end
  return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. key })
end

response = function(status, headers, body)
  if status ~= 200 then
    cursor = nil
    return
  end
  -- The envelope ends with next_cursor, so only the tail of the 30 KB body is searched; a
  -- full scan would make the load generator, not the server, the bottleneck on two cores.
  cursor = string.match(body, '"next_cursor":"([^"]+)"', -512)
  if not cursor then
    owner_index = owner_index % #owners + 1
  end
end

done = function(summary, latency, requests)
  io.write(string.format("p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("requests_per_sec=%.0f errors_status=%d\n",
    summary.requests / (summary.duration / 1e6), summary.errors.status))
end
