-- Sends every line of a file exactly once, in order, then stops wrk: for writes, where each
-- request must be new (a fresh customer, seat or Idempotency-Key) and a repeat would measure
-- something else. One line per request, tab-separated:
--   METHOD <TAB> PATH <TAB> BODY or - <TAB> Header: value [<TAB> Header: value]...
-- Usage: wrk -t1 -c C -d MAX_SECONDS ... -s bench/wrk/list.lua URL -- LINES_FILE
--
-- One wrk thread only (the list is not split). When the last response is in, the script stops
-- its thread and wakes wrk's main thread (SIGINT to it, which wrk handles as "stop now"), so
-- wrk reports the real run time instead of sleeping out -d; -d is only a cap.
-- A connection that comes free after the last line was handed out waits (delay) instead of
-- sending anything. If the wait runs out before the last response arrives (a lost request),
-- it sends a filler GET /healthz (answer 200, which no benchmarked write answers), counted
-- apart; after 200 fillers the run gives up on the missing responses and stops.
-- done() prints machine-readable lines starting with "BENCH ".

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_usec; } bench_timeval;
int gettimeofday(bench_timeval *tv, void *tz);
int getpid(void);
long syscall(long number, ...);
]])

local SYS_TGKILL = ({ x64 = 234, arm64 = 131 })[ffi.arch]
local SIGINT = 2
local PARK_MS = 1000
local MAX_FILLERS = 200

local function now_us()
  local tv = ffi.new("bench_timeval")
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) * 1000000 + tonumber(tv.tv_usec)
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local function split_tabs(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do
    fields[#fields + 1] = field
  end
  return fields
end

function init(args)
  reqs = {}
  for line in io.lines(args[1]) do
    local f = split_tabs(line)
    local headers = {}
    for i = 4, #f do
      local name, value = f[i]:match("^([^:]+):%s*(.*)$")
      headers[name] = value
    end
    local body = nil
    if f[3] ~= "-" then
      body = f[3]
    end
    reqs[#reqs + 1] = wrk.format(f[1], f[2], headers, body)
  end
  if #reqs == 0 then
    error("no lines in " .. args[1])
  end
  nreqs = #reqs
  filler = wrk.format("GET", "/healthz")
  verified = false
  reserved, sent, received, fillers = 0, 0, 0, 0
  first_us, last_us, stopped = 0, 0, 0
  statuses = {}
end

-- wrk asks delay() before each request() of a connection: reserve a line, or park.
function delay()
  if reserved < #reqs then
    reserved = reserved + 1
    return 0
  end
  return PARK_MS
end

function request()
  if not verified then -- wrk calls request() once before the run to check it; not sent
    verified = true
    return reqs[1]
  end
  if sent < #reqs then
    sent = sent + 1
    if sent == 1 then
      first_us = now_us()
    end
    return reqs[sent]
  end
  return filler
end

local function finish()
  stopped = 1
  wrk.thread:stop()
  if SYS_TGKILL then
    local pid = ffi.C.getpid()
    ffi.C.syscall(SYS_TGKILL, ffi.cast("long", pid), ffi.cast("long", pid), ffi.cast("long", SIGINT))
  end
end

function response(status, headers, body)
  if status == 200 then
    fillers = fillers + 1
    if fillers >= MAX_FILLERS and stopped == 0 then
      finish()
    end
    return
  end
  received = received + 1
  last_us = now_us()
  local key = tostring(status)
  if status >= 400 then
    key = key .. " " .. (body:match('"code"%s*:%s*"([%w_]+)"') or "?")
  end
  statuses[key] = (statuses[key] or 0) + 1
  if received == #reqs and stopped == 0 then
    finish()
  end
end

function done(summary, latency, requests)
  local t = threads[1]
  for key, n in pairs(t:get("statuses")) do
    io.write(string.format("BENCH code %s %d\n", (key:gsub(" ", "/")), n))
  end
  io.write(string.format("BENCH lines %d\n", t:get("nreqs")))
  io.write(string.format("BENCH sent %d\n", t:get("sent")))
  io.write(string.format("BENCH received %d\n", t:get("received")))
  io.write(string.format("BENCH fillers %d\n", t:get("fillers")))
  io.write(string.format("BENCH first_us %d\n", t:get("first_us")))
  io.write(string.format("BENCH last_us %d\n", t:get("last_us")))
  io.write(string.format("BENCH p999_us %d\n", latency:percentile(99.9)))
  io.write(string.format("BENCH max_us %d\n", latency.max))
  local e = summary.errors
  io.write(string.format("BENCH socket_errors %d %d %d %d\n", e.connect, e.read, e.write, e.timeout))
end
