-- wrk script for `make bench`: POST one house per request, cycling over the bodies of a
-- JSON-lines file (one JSON object a line), and print the run's figures as one JSON line.
--   wrk --latency -t T -c C -d D --timeout S -s bench/post.lua URL -- BODIES_FILE [API_KEY]
-- Non-2xx answers are counted here (wrk itself only counts status >= 400 as errors).

local bodies = {}
local index = 0
non2xx = 0
-- Sum and count of the `batch_size` field of answers that carry one (the service's micro-batches).
batched = 0
batches = 0
local threads = {}

function setup(thread)
  thread:set("thread_no", #threads)
  table.insert(threads, thread)
end

function init(args)
  local path = args[1]
  if path == nil then error("usage: wrk ... -s post.lua URL -- BODIES_FILE") end
  for line in io.lines(path) do
    if #line > 0 then bodies[#bodies + 1] = line end
  end
  if #bodies == 0 then error("no bodies in " .. path) end
  -- Threads start at different rows, so concurrent requests are not all the same house.
  index = ((thread_no or 0) * 37) % #bodies
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if args[2] ~= nil then wrk.headers["Authorization"] = "Bearer " .. args[2] end
end

function request()
  index = index % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[index])
end

function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
  local size = body:match('"batch_size":(%d+)')
  if size then
    batched = batched + tonumber(size)
    batches = batches + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  local sizes, counted = 0, 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non2xx") or 0)
    sizes = sizes + (t:get("batched") or 0)
    counted = counted + (t:get("batches") or 0)
  end
  local mean_batch = counted > 0 and sizes / counted or 0
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,"non2xx":%.0f,"mean_batch_size":%.2f,'
      .. '"errors":{"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f},'
      .. '"latency_us":{"min":%.0f,"mean":%.1f,"max":%.0f,"stdev":%.1f,'
      .. '"p50":%.0f,"p90":%.0f,"p95":%.0f,"p99":%.0f,"p999":%.0f}}\n',
    summary.requests, summary.duration, summary.bytes, bad, mean_batch,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max, latency.stdev,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency:percentile(99.9)))
end
