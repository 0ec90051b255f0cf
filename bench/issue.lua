-- wrk script: POST /api/v1/agents/{agent}/csr with one CSR for certificates mc-bench-000000 …
-- rotating, so consecutive requests (and the threads) issue for different certificates.
--   CERTCTL_BENCH_KEY         API key (Bearer)
--   CERTCTL_BENCH_AGENT       agent ID in the path
--   CERTCTL_BENCH_CERTS       how many certificates to rotate over
--   CERTCTL_BENCH_CSR         path of the PEM CSR every request carries
--   CERTCTL_BENCH_THREADS     the -t given to wrk (default 2)
--   CERTCTL_BENCH_LIMIT       optional: total 201s after which the run ends (0 = run for -d)
--   CERTCTL_BENCH_DONE_FILE   with LIMIT: an empty scratch file the threads use to end the run
local key = os.getenv("CERTCTL_BENCH_KEY")
local agent = os.getenv("CERTCTL_BENCH_AGENT")
local count = tonumber(os.getenv("CERTCTL_BENCH_CERTS"))
local limit = tonumber(os.getenv("CERTCTL_BENCH_LIMIT") or "0")
local nthreads = tonumber(os.getenv("CERTCTL_BENCH_THREADS") or "2")

local f = assert(io.open(os.getenv("CERTCTL_BENCH_CSR"), "r"))
local csr = f:read("*a"):gsub("\n", "\\n")
f:close()

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("index", #threads - 1)
end

function init(args)
  created, failed, first_error = 0, 0, nil
  -- Each thread starts in its own stretch of the certificates.
  next_cert = math.floor(index * count / nthreads)
  thread_limit = math.ceil(limit / nthreads)
  headers = { ["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json" }
  path = "/api/v1/agents/" .. agent .. "/csr"
end

-- wrk's main thread sleeps for the whole -d even when every thread has stopped, so the last
-- thread to finish ends the run with SIGINT, after which wrk prints its summary as usual.
local function finish_thread()
  if finished then
    return
  end
  finished = true
  wrk.thread:stop()
  local done_file = os.getenv("CERTCTL_BENCH_DONE_FILE")
  if not done_file then
    return
  end
  local f = assert(io.open(done_file, "a"))
  f:write("done\n")
  f:close()
  local n = 0
  for _ in io.lines(done_file) do
    n = n + 1
  end
  if n >= nthreads then
    local stat = assert(io.open("/proc/self/stat", "r"))
    local pid = stat:read("*n")
    stat:close()
    -- Not os.execute: system() ignores SIGINT in the calling process until the command ends.
    io.popen("kill -INT " .. pid):close()
  end
end

function request()
  local id = string.format("mc-bench-%06d", next_cert % count)
  next_cert = next_cert + 1
  local body = '{"certificate_id":"' .. id .. '","csr_pem":"' .. csr .. '"}'
  return wrk.format("POST", path, headers, body)
end

function response(status, hdrs, body)
  if status == 201 then
    created = created + 1
  else
    failed = failed + 1
    if not first_error then
      first_error = status .. " " .. string.sub(body, 1, 300)
    end
  end
  if thread_limit > 0 and created >= thread_limit then
    finish_thread()
  end
end

function done(summary, latency, requests)
  local c, f, err = 0, 0, nil
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    f = f + t:get("failed")
    err = err or t:get("first_error")
  end
  io.write(string.format("created_201=%d other_status=%d socket_errors=%d\n", c, f,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
  if err then
    io.write("first_error=" .. err .. "\n")
  end
  io.write(string.format("certificates_per_sec=%.0f\n", c / (summary.duration / 1e6)))
  io.write(string.format("p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
