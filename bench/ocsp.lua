-- wrk script: RFC 5019 OCSP GETs, one pre-built request path per line of a file.
--   CERTCTL_BENCH_PATHS    file of percent-encoded base64 requests (certctl-bench ocsp-requests)
--   CERTCTL_BENCH_PREFIX   URL path before the request, e.g. /.well-known/pki/ocsp/iss-bench/ or /
--   CERTCTL_BENCH_MODE     random (default): a random line per request;
--                          walk: every line once, split between the threads, then stop
--   CERTCTL_BENCH_DONE_FILE  with walk: an empty scratch file the threads use to end the run
--   CERTCTL_BENCH_THREADS  the -t given to wrk (default 2)
--   CERTCTL_BENCH_CLOSE    1: send Connection: close (a new TCP connection per request)
local prefix = os.getenv("CERTCTL_BENCH_PREFIX") or "/"
local mode = os.getenv("CERTCTL_BENCH_MODE") or "random"
local nthreads = tonumber(os.getenv("CERTCTL_BENCH_THREADS") or "2")

-- wrk's default resolve() checks each address with a connection it closes without a request.
-- OpenSSL 3.0's `openssl ocsp` responder then spins on that empty connection and never answers
-- again, so the addresses are taken as they resolve.
function wrk.resolve(host, service)
  wrk.addrs = wrk.lookup(host, service)
end

local paths = {}
for line in io.lines(os.getenv("CERTCTL_BENCH_PATHS")) do
  if #line > 0 then
    paths[#paths + 1] = prefix .. line
  end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("index", #threads - 1)
end

function init(args)
  ok, other, bytes = 0, 0, 0
  math.randomseed(os.time() + index * 7919)
  -- walk: thread i takes lines i+1, i+1+n, i+1+2n, …
  cursor = index + 1
  local headers = {}
  if os.getenv("CERTCTL_BENCH_CLOSE") == "1" then
    headers["Connection"] = "close"
  end
  -- Every request is formatted once here, so each one sent costs the load generator a table
  -- lookup instead of building the request text again: wrk shares the responder's two cores, and
  -- what it spends per request caps the rate of whichever responder is faster.
  requests = {}
  for i, p in ipairs(paths) do
    requests[i] = wrk.format("GET", p, headers)
  end
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
  if mode == "walk" then
    local r = requests[cursor]
    cursor = cursor + nthreads
    -- Past the end: repeat the last request until stop() takes effect.
    return r or requests[#requests]
  end
  return requests[math.random(#requests)]
end

-- Whether a body is an OCSPResponse with responseStatus successful (0): SEQUENCE, then
-- ENUMERATED 0 right after the SEQUENCE's length.
local function successful(body)
  if string.byte(body, 1) ~= 0x30 then
    return false
  end
  local len = string.byte(body, 2)
  local at = 3
  if len and len > 0x80 then
    at = 3 + (len - 0x80)
  end
  return string.byte(body, at) == 0x0a and string.byte(body, at + 1) == 0x01 and string.byte(body, at + 2) == 0x00
end

function response(status, hdrs, body)
  if status == 200 and successful(body) then
    ok = ok + 1
  else
    other = other + 1
  end
  if mode == "walk" and cursor > #paths then
    finish_thread()
  end
end

function done(summary, latency, requests)
  local o, x = 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("ok")
    x = x + t:get("other")
  end
  io.write(string.format("ocsp_ok=%d other=%d socket_errors=%d\n", o, x,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
  io.write(string.format("requests_per_sec=%.0f\n", summary.requests / (summary.duration / 1e6)))
  io.write(string.format("p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
