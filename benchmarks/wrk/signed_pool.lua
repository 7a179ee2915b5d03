-- wrk script: POST each pre-signed MLflow delivery of a pool once (fresh delivery id per request).
-- BENCH_POOL: file of "delivery_id<TAB>timestamp<TAB>signature" lines (benchmarks/signed.py);
-- BENCH_BODY: file holding the exact body the signatures cover; BENCH_THREADS: wrk's -t.
-- Thread i sends lines i, i+T, i+2T, ... so no two requests share an id. If a thread runs out
-- it starts over (duplicates) and counts it in `wrapped`; the harness treats that as an error.

local threads = {}
local thread_count = tonumber(os.getenv("BENCH_THREADS") or "1")

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

local function read_all(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("*a")
  file:close()
  return text
end

function init(args)
  local body = read_all(os.getenv("BENCH_BODY"))
  pool = {}
  wrapped = 0
  position = 0
  local line_number = 0
  for line in io.lines(os.getenv("BENCH_POOL")) do
    if line_number % thread_count == thread_index then
      local id, timestamp, signature = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)$")
      pool[#pool + 1] = wrk.format("POST", "/webhooks/mlflow", {
        ["Content-Type"] = "application/json",
        ["X-MLflow-Delivery-Id"] = id,
        ["X-MLflow-Timestamp"] = timestamp,
        ["X-MLflow-Signature"] = signature,
      }, body)
    end
    line_number = line_number + 1
  end
end

function request()
  position = position + 1
  if position > #pool then
    position = 1
    wrapped = wrapped + 1
  end
  return pool[position]
end

function done(summary, latency, requests)
  local wrapped_total = 0
  for _, thread in ipairs(threads) do
    wrapped_total = wrapped_total + thread:get("wrapped")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, ' ..
    '"p99_us": %d, "max_us": %d, "errors": {"connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d}, "wrapped": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout,
    wrapped_total))
end
