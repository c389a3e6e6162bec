-- Every request comes from the next customer of a file, one line per customer:
--   METHOD <TAB> PATH <TAB> BEARER_TOKEN [<TAB> X_QUEUE_TOKEN]
-- Usage: wrk -t T ... -s bench/wrk/cycle.lua URL -- LINES_FILE T
-- Thread i of T takes lines i, i+T, i+2T, ... so no two threads send the same customer. A
-- thread that has used up its slice starts it again; `wraps` counts that (for POST .../queue a
-- wrap means repeat entries, answered 200 instead of 201).
-- done() prints machine-readable lines starting with "BENCH ".

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local file, nthreads = args[1], tonumber(args[2])
  reqs = {}
  local i = 0
  for line in io.lines(file) do
    if i % nthreads == tid then
      local method, path, bearer, qtoken = line:match("^(%S+)\t(%S+)\t(%S+)\t?(%S*)$")
      local headers = { ["Authorization"] = "Bearer " .. bearer }
      if qtoken ~= "" then
        headers["X-Queue-Token"] = qtoken
      end
      reqs[#reqs + 1] = wrk.format(method, path, headers)
    end
    i = i + 1
  end
  if #reqs == 0 then
    error("no lines for thread " .. tid .. " in " .. file)
  end
  idx = 0
  wraps = 0
  statuses = {}
end

function request()
  idx = idx + 1
  if idx > #reqs then
    idx = 1
    wraps = wraps + 1
  end
  return reqs[idx]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total, w = {}, 0
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("statuses")) do
      total[code] = (total[code] or 0) + n
    end
    w = w + t:get("wraps")
  end
  for code, n in pairs(total) do
    io.write(string.format("BENCH status %d %d\n", code, n))
  end
  io.write(string.format("BENCH wraps %d\n", w))
  io.write(string.format("BENCH p999_us %d\n", latency:percentile(99.9)))
  io.write(string.format("BENCH max_us %d\n", latency.max))
  local e = summary.errors
  io.write(string.format("BENCH socket_errors %d %d %d %d\n", e.connect, e.read, e.write, e.timeout))
end
