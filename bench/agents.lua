-- wrk script: a fleet of agents, each request a heartbeat or a work poll of the next agent.
--   CERTCTL_BENCH_FLEET    file of "agent_id credential" lines (bench/agents.sh writes it)
--   CERTCTL_BENCH_THREADS  the -t given to wrk (default 2)
-- Requests alternate heartbeat (POST /api/v1/agents/{id}/heartbeat) and work poll
-- (GET /api/v1/agents/{id}/work); each thread walks the fleet from its own offset, so the agents
-- are spread over time as a real fleet's are.
local nthreads = tonumber(os.getenv("CERTCTL_BENCH_THREADS") or "2")

local fleet = {}
for line in io.lines(os.getenv("CERTCTL_BENCH_FLEET")) do
  local id, credential = line:match("^(%S+)%s+(%S+)$")
  if id then
    fleet[#fleet + 1] = { id = id, auth = "Bearer " .. credential }
  end
end

local body = '{"version":"0.1.0","hostname":"bench-host","os":"linux","architecture":"x86_64","ip_address":"10.0.0.1"}'
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("index", #threads - 1)
end

function init(args)
  cursor = math.floor(index * #fleet / nthreads)
  heartbeat = true
  ok, other = 0, 0
end

function request()
  local agent = fleet[cursor % #fleet + 1]
  local headers = { ["Authorization"] = agent.auth }
  if heartbeat then
    headers["Content-Type"] = "application/json"
    heartbeat = false
    return wrk.format("POST", "/api/v1/agents/" .. agent.id .. "/heartbeat", headers, body)
  end
  heartbeat = true
  cursor = cursor + 1
  return wrk.format("GET", "/api/v1/agents/" .. agent.id .. "/work", headers)
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
  else
    other = other + 1
    if other <= 3 then
      io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n")
    end
  end
end

function done(summary, latency, requests)
  local ok_total, other_total = 0, 0
  for _, t in ipairs(threads) do
    ok_total = ok_total + t:get("ok")
    other_total = other_total + t:get("other")
  end
  io.write(string.format("status 200: %d, other: %d\n", ok_total, other_total))
  for _, p in ipairs({ 50, 90, 99, 99.9 }) do
    io.write(string.format("p%s: %.2f ms\n", p, latency:percentile(p) / 1000))
  end
end
