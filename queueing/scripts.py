"""The waiting room's Redis scripts. Each runs atomically, so no read-modify-write race exists
between gunicorn workers and Celery processes.

Every script gets the same KEYS, all of one concert and one hash tag (one Cluster slot):
  1 waiting   ZSET user -> order key (pre-opening: random below 2^41; after: 2^41 + arrival
              time in microseconds by Redis's clock)
  2 seen      ZSET user -> last poll, on the abandonment clock (ms), waiting users only
  3 admitted  ZSET user -> admitted until (ms)
  4 entries   HASH user -> "<nonce>:<order key>" of the user's current entry (what its token
              names; the order key stays with it once admitted, for the token)
  5 ended     HASH user -> why the current entry ended: left | done | abandoned
  6 meta      HASH last_order, bucket, bucket_ms (admission token bucket), window_start, rate,
              last_tick, outage_ms (the abandonment clock's pause), live (this Redis has been
              set up for the concert by a tick), resume_at (no admission before it)
  7 counts    HASH second -> admissions in that second, for the measured rate (last 60 s)
  8 admits    HASH admitted user -> "u:<admitted at ms>" (not claimed yet) | "c:<admitted at ms>"
              (claimed: polled and saw it, or made a gated call)
  9 polls     HASH waiting entry's nonce -> "<last poll ms>:<interval told ms>": the poll gate,
              keyed by nonce so that it can be read before the customer is authenticated
meta also keeps the session statistics of the turnover estimate: t0 (first admission, ms),
n_live and sum_live (admitted sessions running, and the sum of their admission times - t0),
n_end and sum_end (sessions ended, and the sum of their lengths), turnover (slots freed per
ms when every slot is taken: max_active / estimated mean session length).
Times are milliseconds from the application's clock, passed in ARGV; only the order of
arrival comes from Redis's own clock, so that it is one clock for every web node.

The abandonment clock is wall time minus the time the service was not answering
(`outage_ms`): a poll records `now - outage_ms`, and the tick drops whoever has not polled
for abandon_after on that clock. The tick runs every second; a gap between two ticks far
longer than that means the service was down (the database or Redis: the tick needs both),
and the gap is added to `outage_ms`, so nobody loses their place for polls that could not
be answered.
"""

KEY_NAMES = (
    "waiting",
    "seen",
    "admitted",
    "entries",
    "ended",
    "meta",
    "counts",
    "admits",
    "polls",
)

POST_OPENING_BASE = 2**41  # order keys of post-opening arrivals start here; random ones below

# A gap between ticks longer than this is an outage (beat sends one a second).
OUTAGE_GAP_MS = 3_000
TICK_INTERVAL_MS = 1_000


# How often a waiting customer is told to poll: a share of their ETA, at least every
# POLL_MIN_MS, at most the concert's cap (settings_args in selectors.py: 60 s, and well inside
# the abandon time). A poll earlier than the smaller of 80 % of the told interval and the
# interval minus a second is refused (429). docs/queue.md, "Polling".
POLL_SHARE_OF_ETA = 0.25
POLL_MIN_MS = 1_000
POLL_EARLY_FRACTION = 0.8
POLL_EARLY_SLACK_MS = 1_000
PAUSED_POLL_MS = 15_000  # while the operator holds admission (no ETA)
ADMITTED_POLL_MS = 30_000
# The ETA's prior for the length of a session it has not seen end, when the operator did not
# say how long customers usually shop (the concert's queue_shopping_seconds): this share of the
# admitted session. A running session lasts its age plus the prior's share of what is left of
# the admitted session (docs/queue.md, "ETA"; tuned with bench/queue_sim.py).
SESSION_PRIOR_SHARE = 0.7

# Helpers every entry script shares.
# settings_at(i): the concert's queue settings passed from ARGV[i] on (selectors.settings_args):
#   per_minute, max_active, admitted_ms, poll_cap_ms, opens_ms ('' if none), paused (1/0),
#   gate (1/0: refuse early polls), prior_ms (selectors.session_prior_ms)
PRELUDE = """
local function nonce_of(entry) return string.sub(entry, 1, 16) end
local function order_of(entry) return string.sub(entry, 18) end

local function abandon_clock(now)
  return now - tonumber(redis.call('HGET', KEYS[6], 'outage_ms') or '0')
end

local function settings_at(i)
  local cfg = {
    per_minute = tonumber(ARGV[i] or '') or 60,
    max_active = tonumber(ARGV[i + 1] or '') or 1,
    admitted_ms = tonumber(ARGV[i + 2] or '') or 600000,
    poll_cap_ms = tonumber(ARGV[i + 3] or '') or 60000,
    opens_ms = tonumber(ARGV[i + 4] or ''),
    paused = ARGV[i + 5] == '1',
    gate = ARGV[i + 6] ~= '0',
    prior_ms = tonumber(ARGV[i + 7] or ''),
  }
  cfg.prior_ms = cfg.prior_ms or SESSION_PRIOR_SHARE * cfg.admitted_ms
  return cfg
end

-- The poll gate of a waiting entry: nil if a poll now is in time, else the ms to wait.
local function told_poll(nonce)
  local told = redis.call('HGET', KEYS[9], nonce)
  if not told then return nil end
  local sep = string.find(told, ':', 1, true)
  return tonumber(string.sub(told, 1, sep - 1)), tonumber(string.sub(told, sep + 1))
end

local function poll_early(nonce, now)
  local last, interval = told_poll(nonce)
  if last and now < last + math.min(POLL_EARLY_FRACTION * interval,
                                    interval - POLL_EARLY_SLACK_MS) then
    return math.max(1, last + interval - now)
  end
  return nil
end

-- Admitted sessions: when they began (for the turnover estimate) and whether claimed.
local function session_start(user, at, claimed)
  if redis.call('HEXISTS', KEYS[8], user) == 1 then return end
  local t0 = tonumber(redis.call('HGET', KEYS[6], 't0') or '')
  if not t0 then
    t0 = at
    redis.call('HSET', KEYS[6], 't0', string.format('%.0f', at))
  end
  redis.call('HSET', KEYS[8], user, (claimed and 'c:' or 'u:') .. string.format('%.0f', at))
  redis.call('HINCRBY', KEYS[6], 'n_live', 1)
  redis.call('HINCRBYFLOAT', KEYS[6], 'sum_live', at - t0)
end

-- -> 'u' (it had not been claimed) | 'c' | nil (no session)
local function session_end(user, ended_at)
  local session = redis.call('HGET', KEYS[8], user)
  if not session then return nil end
  redis.call('HDEL', KEYS[8], user)
  local at = tonumber(string.sub(session, 3))
  local t0 = tonumber(redis.call('HGET', KEYS[6], 't0') or at)
  redis.call('HINCRBY', KEYS[6], 'n_live', -1)
  redis.call('HINCRBYFLOAT', KEYS[6], 'sum_live', t0 - at)
  redis.call('HINCRBY', KEYS[6], 'n_end', 1)
  redis.call('HINCRBYFLOAT', KEYS[6], 'sum_end', math.max(0, ended_at - at))
  return string.sub(session, 1, 1)
end

-- The customer is here (a poll or a gated call): an admitted session not claimed yet becomes
-- a whole admitted session from now. -> the session's end (ms) if it was claimed now
local function claim(user, now, cfg)
  local session = redis.call('HGET', KEYS[8], user)
  if session and string.sub(session, 1, 1) == 'u' then
    local ends = now + cfg.admitted_ms
    redis.call('ZADD', KEYS[3], ends, user)
    redis.call('HSET', KEYS[8], user, 'c:' .. string.sub(session, 3))
    return ends
  end
  return nil
end

-- Slots freed per ms when every slot is taken (the tick keeps it; before the first tick, the
-- prior): max_active / the estimated mean session length.
-- and the lag (ms) of the sessions running now behind a steady state (a young cohort: right
-- after opening every session has just begun, and the first ones end later than the steady
-- pace says). Before the first tick, the prior.
local function turnover(cfg)
  local m = redis.call('HMGET', KEYS[6], 'turnover', 'lag')
  local length = cfg.prior_ms
  return tonumber(m[1] or '') or cfg.max_active / length, tonumber(m[2] or '') or length / 2
end

-- ms until the customer at `position` is admitted, with `active` sessions running: the
-- places that find a free slot at the configured pace; those behind them at the pace slots
-- free up (after the lag), or the configured pace if that is later.
local function eta_ms(position, active, cfg)
  local pace = cfg.per_minute / 60000
  local freeing, lag = turnover(cfg)
  local free = math.max(0, cfg.max_active - active)
  if freeing >= pace or position <= free then
    return position / pace
  end
  -- (- 0.5: on average a slot is already half-way to freeing up when the lag is 0)
  return math.max(position / pace, lag + (position - free - 0.5) / freeing)
end

local function poll_interval(eta, cfg, now, user)
  local ms
  if not cfg.opens_ms then
    ms = cfg.poll_cap_ms
  elseif now < cfg.opens_ms then
    -- Nobody needs to poll before opening (abandonment starts then): come back after it as
    -- if told at opening, so the early arrivals come back spread as the line is.
    -- (No ETA while paused: then at opening itself.)
    ms = cfg.opens_ms - now + POLL_SHARE_OF_ETA * (eta or 0)
  elseif cfg.paused then
    ms = PAUSED_POLL_MS
  else
    ms = POLL_SHARE_OF_ETA * eta
  end
  if ms >= cfg.poll_cap_ms then
    -- Up to half less, varying by customer and second: customers who arrived in the same
    -- burst would otherwise come back in the same few seconds every cap, a train of polls.
    local spread = math.floor(cfg.poll_cap_ms / 2000) + 1
    ms = cfg.poll_cap_ms - ((tonumber(user) or 0) * 7919 + math.floor(now / 1000)) % spread * 1000
  end
  ms = math.max(POLL_MIN_MS, math.min(cfg.poll_cap_ms, ms))
  return math.floor(ms / 1000) * 1000  -- whole seconds, as the answer says it
end
"""

# Where the entry `nonce` of `user` stands. mode: 'poll' (a waiting customer's poll: refused
# if early, keeps the place alive, claims an admission, records when to poll next), 'enter'
# (claims, records), 'look' (a gated call: claims).
# -> {'unknown'} (Redis has no entry of the user: it lost it, or never had it)
#  | {'invalid'} (the user's current entry is another one: the token was replaced)
#  | {'early', ms to wait} | {'ended', reason} | {'admitted', until, poll ms}
#  | {'waiting', position, eta ms ('' while paused), poll ms}
ENTRY_STATUS = (
    PRELUDE
    + """
local function entry_status(user, nonce, now, mode, cfg)
  local current = redis.call('HGET', KEYS[4], user)
  if not current then
    return {'unknown'}
  end
  if nonce_of(current) ~= nonce then
    return {'invalid'}
  end
  local reason = redis.call('HGET', KEYS[5], user)
  if reason then
    return {'ended', reason}
  end
  local admitted_until = redis.call('ZSCORE', KEYS[3], user)
  if admitted_until then
    if tonumber(admitted_until) > now then
      admitted_until = claim(user, now, cfg) or admitted_until
      return {'admitted', admitted_until, ADMITTED_POLL_MS}
    end
    local session = redis.call('HGET', KEYS[8], user)
    if session and string.sub(session, 1, 1) == 'u' then
      return {'ended', 'unclaimed'}
    end
    return {'ended', 'expired'}
  end
  local rank = redis.call('ZRANK', KEYS[1], user)
  if rank then
    if mode == 'poll' then
      local early = cfg.gate and poll_early(nonce, now)
      if early then return {'early', early} end
      redis.call('ZADD', KEYS[2], abandon_clock(now), user)
    end
    local eta = nil
    if not cfg.paused then  -- (before opening as at opening: for the interval, not shown)
      eta = eta_ms(rank + 1, redis.call('ZCOUNT', KEYS[3], '(' .. now, '+inf'), cfg)
    end
    local interval = poll_interval(eta, cfg, now, user)
    if mode ~= 'look' then
      redis.call('HSET', KEYS[9], nonce, string.format('%.0f', now) .. ':' .. interval)
    end
    return {'waiting', rank + 1, eta and string.format('%.0f', eta) or '', interval}
  end
  return {'ended', 'expired'}
end
"""
)

# The poll gate, before the customer is authenticated (no database query on a refused poll).
# ARGV: nonce, now -> ms to wait (0: in time)
POLL_GATE = (
    PRELUDE
    + """
return poll_early(ARGV[1], tonumber(ARGV[2])) or 0
"""
)

# ARGV: user, nonce, now, mode, then the settings (settings_at(5)) -> entry_status
STATUS = (
    ENTRY_STATUS
    + """
return entry_status(ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], settings_at(5))
"""
)

# ARGV: user, new nonce, now, pre-opening (1/0), random order key, then the settings
# (settings_at(6))
# -> {nonce, order key, created (1/0), then the entry's status as STATUS gives it}: one round
# trip for what a customer entering needs to see.
ENTER = (
    ENTRY_STATUS
    + """
local user, new_nonce, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local cfg = settings_at(6)
local entry = redis.call('HGET', KEYS[4], user)
-- (HEXISTS answers 0 or 1, and 0 is true in Lua: compare, never test it bare.)
if entry and redis.call('HEXISTS', KEYS[5], user) == 0 then
  local nonce, waiting = nonce_of(entry), redis.call('ZSCORE', KEYS[1], user)
  local admitted_until = redis.call('ZSCORE', KEYS[3], user)
  if waiting or (admitted_until and tonumber(admitted_until) > now) then
    if waiting then redis.call('ZADD', KEYS[2], abandon_clock(now), user) end
    return {nonce, order_of(entry), 0, unpack(entry_status(user, nonce, now, 'enter', cfg))}
  end
end
-- No live entry (never entered, or the last one ended): a new one, at the back of the line.
if entry then redis.call('HDEL', KEYS[9], nonce_of(entry)) end
session_end(user, now)
redis.call('ZREM', KEYS[3], user)
redis.call('HDEL', KEYS[5], user)
local order
if ARGV[4] == '1' then
  order = tonumber(ARGV[5])
else
  -- Arrival by Redis's clock, so that it still sorts after everyone who came earlier when
  -- Redis has lost the line and restores it from tokens; never equal to the last one.
  local time = redis.call('TIME')
  order = POST_OPENING_BASE + tonumber(time[1]) * 1000000 + tonumber(time[2])
  local last = tonumber(redis.call('HGET', KEYS[6], 'last_order') or '0')
  if order <= last then order = last + 1 end
  redis.call('HSET', KEYS[6], 'last_order', string.format('%.0f', order))
end
order = string.format('%.0f', order)
redis.call('HSET', KEYS[4], user, new_nonce .. ':' .. order)
redis.call('ZADD', KEYS[1], order, user)
redis.call('ZADD', KEYS[2], abandon_clock(now), user)
return {new_nonce, order, 1, unpack(entry_status(user, new_nonce, now, 'enter', cfg))}
"""
)

# Put back an entry Redis lost, from what survived it: the customer's signed token (nonce and
# order key) and, for an admitted customer, the admission recorded in the database. An
# admitted session goes back only while fewer than max_active are admitted: capacity holds
# by construction, whatever the database says; one that finds no room goes back to the line
# at its own (early) order key, next to be let in.
# ARGV: user, nonce, order key, now, admitted until (ms; '' while waiting), max_active, then
# the settings (settings_at(7)) -> entry_status
RESTORE = (
    ENTRY_STATUS
    + """
local user, nonce, now = ARGV[1], ARGV[2], tonumber(ARGV[4])
local cfg = settings_at(7)
if redis.call('HEXISTS', KEYS[4], user) == 0 then
  redis.call('HSET', KEYS[4], user, nonce .. ':' .. ARGV[3])
  local room = ARGV[5] ~= '' and
    redis.call('ZCOUNT', KEYS[3], '(' .. now, '+inf') < tonumber(ARGV[6])
  if room then
    redis.call('ZADD', KEYS[3], tonumber(ARGV[5]), user)
    session_start(user, tonumber(ARGV[5]) - cfg.admitted_ms, true)
  else
    redis.call('ZADD', KEYS[1], tonumber(ARGV[3]), user)
    redis.call('ZADD', KEYS[2], abandon_clock(now), user)
  end
end
return entry_status(user, nonce, now, 'look', cfg)
"""
)

# ARGV: user, nonce (empty: the user's admitted entry, if any), reason (left | done), now
# -> {'invalid'} | {previous state}
END = (
    PRELUDE
    + """
local user = ARGV[1]
local entry = redis.call('HGET', KEYS[4], user)
if not entry or (ARGV[2] ~= '' and nonce_of(entry) ~= ARGV[2]) then
  return {'invalid'}
end
-- Without a nonce (a payment freeing its buyer's slot) only an admitted entry ends: the buyer
-- may already be waiting again, for another date, and must not lose that place.
if ARGV[2] == '' and not redis.call('ZSCORE', KEYS[3], user) then
  return {'invalid'}
end
local previous = redis.call('HGET', KEYS[5], user)
if previous then
  return {previous}
end
local was_admitted = redis.call('ZREM', KEYS[3], user)
session_end(user, tonumber(ARGV[4]))
redis.call('ZREM', KEYS[1], user)
redis.call('ZREM', KEYS[2], user)
redis.call('HDEL', KEYS[9], nonce_of(entry))
redis.call('HSET', KEYS[5], user, ARGV[3])
if was_admitted == 1 then return {'admitted'} end
return {'waiting'}
"""
)

# ARGV: now, admitting (1/0), max_active, admit_per_minute, admitted_ms, abandon_after_ms
#       (-1: nobody is dropped yet), claim_ms, prior_ms (selectors.session_prior_ms)
# -> {'new'} when this Redis has not been set up for the concert (first tick ever, or Redis
#    lost its data): the caller restores what the database knows, marks it live, ticks again
#  | {admitted now, active, waiting, rate per second, n, n users whose admission went
#     unclaimed, then user, "nonce:order", user, ... of those admitted now}
TICK = (
    PRELUDE
    + """
local now = tonumber(ARGV[1])
if redis.call('HEXISTS', KEYS[6], 'live') == 0 then
  return {'new'}
end
local max_active, per_minute = tonumber(ARGV[3]), tonumber(ARGV[4])
local admitted_ms, abandon_after = tonumber(ARGV[5]), tonumber(ARGV[6])
local claim_ms = tonumber(ARGV[7] or '') or 30000
local prior_ms = math.min(admitted_ms, tonumber(ARGV[8] or '') or SESSION_PRIOR_SHARE * admitted_ms)

-- The service did not answer between the last tick and this one: pause the abandonment clock
-- for that long.
local last_tick = tonumber(redis.call('HGET', KEYS[6], 'last_tick') or now)
local outage = tonumber(redis.call('HGET', KEYS[6], 'outage_ms') or '0')
if now - last_tick > OUTAGE_GAP_MS then
  local gap = (now - last_tick) - TICK_INTERVAL_MS
  outage = outage + gap
  redis.call('HSET', KEYS[6], 'outage_ms', outage)
  -- Nor can an admission be claimed while nothing answers: the claim windows move on too.
  local sessions = redis.call('HGETALL', KEYS[8])
  for i = 1, #sessions, 2 do
    if string.sub(sessions[i + 1], 1, 1) == 'u' then
      redis.call('ZINCRBY', KEYS[3], gap, sessions[i])
    end
  end
end
if now > last_tick then
  redis.call('HSET', KEYS[6], 'last_tick', now)
end

-- Admitted sessions that ran out free their slots (their status reads 'expired'); those never
-- claimed within the claim window read 'unclaimed'.
local unclaimed = {}
local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'WITHSCORES')
for i = 1, #gone, 2 do
  if session_end(gone[i], math.min(now, tonumber(gone[i + 1]))) == 'u' then
    redis.call('HSET', KEYS[5], gone[i], 'unclaimed')
    unclaimed[#unclaimed + 1] = gone[i]
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)

-- Waiting customers who stopped polling lose their place, a bounded batch per tick.
if abandon_after >= 0 then
  local cutoff = now - outage - abandon_after
  local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', cutoff, 'LIMIT', 0, 1000)
  for _, user in ipairs(stale) do
    redis.call('ZREM', KEYS[1], user)
    redis.call('ZREM', KEYS[2], user)
    redis.call('HSET', KEYS[5], user, 'abandoned')
    local entry = redis.call('HGET', KEYS[4], user)
    if entry then redis.call('HDEL', KEYS[9], nonce_of(entry)) end
  end
end

-- Token bucket: admit_per_minute, with at most two seconds' worth saved up, shared by every
-- concurrent tick; and never more admitted at once than max_active. Nobody is admitted
-- before resume_at (set while a lost line is being restored).
local burst = math.max(1, per_minute / 30)
local tokens = tonumber(redis.call('HGET', KEYS[6], 'bucket') or burst)
local last = tonumber(redis.call('HGET', KEYS[6], 'bucket_ms') or now)
tokens = math.min(burst, tokens + math.max(0, now - last) * per_minute / 60000)
local active = redis.call('ZCARD', KEYS[3])
local resume_at = tonumber(redis.call('HGET', KEYS[6], 'resume_at') or '0')
local admitting = ARGV[2] == '1' and now >= resume_at
local admitted = 0
local reply = {}
if admitting then
  local room = math.min(math.floor(tokens), max_active - active)
  if room > 0 then
    local batch = redis.call('ZRANGE', KEYS[1], 0, room - 1)
    for _, user in ipairs(batch) do
      redis.call('ZREM', KEYS[1], user)
      redis.call('ZREM', KEYS[2], user)
      -- The claim window starts when the customer was told to look again, if later: a
      -- customer polling as told never loses the slot for not having seen it yet.
      local entry = redis.call('HGET', KEYS[4], user) or ''
      local due = now
      if entry ~= '' then
        local told_at, interval = told_poll(nonce_of(entry))
        if told_at then
          due = math.max(now, told_at + interval)
          redis.call('HDEL', KEYS[9], nonce_of(entry))
        end
      end
      redis.call('ZADD', KEYS[3], due + claim_ms, user)
      session_start(user, now, false)
      reply[#reply + 1] = user
      reply[#reply + 1] = entry
    end
    admitted = #batch
    tokens = tokens - admitted
  end
end
redis.call('HSET', KEYS[6], 'bucket', tokens, 'bucket_ms', now)

-- Measured rate: admissions per second over the last minute (or since admission began).
local second = math.floor(now / 1000)
local window_start = tonumber(redis.call('HGET', KEYS[6], 'window_start') or '-1')
if admitting and window_start < 0 then
  window_start = second
  redis.call('HSET', KEYS[6], 'window_start', second)
end
if admitted > 0 then
  redis.call('HINCRBY', KEYS[7], second, admitted)
end
local total = 0
local counts = redis.call('HGETALL', KEYS[7])
for i = 1, #counts, 2 do
  local at = tonumber(counts[i])
  if at <= second - 60 then
    redis.call('HDEL', KEYS[7], counts[i])
  else
    total = total + tonumber(counts[i + 1])
  end
end
local rate = 0
if window_start >= 0 then
  rate = total / math.max(1, math.min(60, second - window_start + 1))
  redis.call('HSET', KEYS[6], 'rate', tostring(rate))  -- absent until admission has begun
end

-- The turnover the line can count on once every slot is taken (Little's law): max_active /
-- the mean session length, estimated from the sessions that ended (their real lengths) and
-- those still running (their age, plus the prior's share of what is left of a whole session,
-- until they end).
local m = redis.call('HMGET', KEYS[6], 't0', 'n_live', 'sum_live', 'n_end', 'sum_end')
local t0 = tonumber(m[1] or '')
local n_live, sum_live = tonumber(m[2] or '0'), tonumber(m[3] or '0')
local n_end, sum_end = tonumber(m[4] or '0'), tonumber(m[5] or '0')
local length, mean_age = prior_ms, 0
if t0 and n_live + n_end > 0 then
  local ages = math.max(0, n_live * (now - t0) - sum_live)
  -- What a running session is expected to last: the prior, learning from the sessions seen
  -- to end as their number grows past a full house (max_active of them weigh as much as
  -- the prior). Early on they are the short ones, so the prior keeps most of its say.
  local expected = math.min(admitted_ms,
                            (max_active * prior_ms + sum_end) / (max_active + n_end))
  length = (sum_end + (1 - expected / admitted_ms) * ages + expected * n_live)
           / (n_live + n_end)
  if n_live > 0 then mean_age = ages / n_live end
end
length = math.max(1000, length)
-- Sessions of a steady line are on average at least half their length old; younger ones
-- (all begun at opening) free their slots that much later.
redis.call('HSET', KEYS[6], 'turnover', tostring(max_active / length),
           'lag', tostring(math.max(0, length / 2 - mean_age)))

-- (Appended one by one, not unpack()ed: Lua's stack takes some 8,000 values, and a big
-- batch of admissions is twice that.)
local result = {admitted, active + admitted, redis.call('ZCARD', KEYS[1]), tostring(rate),
                #unclaimed}
for i = 1, #unclaimed do result[#result + 1] = unclaimed[i] end
for i = 1, #reply do result[#result + 1] = reply[i] end
return result
"""
)

# Marks this Redis as set up for the concert, after the caller restored the admitted sessions
# the database knows. ARGV: now, resume_at (ms; 0: admit at once) -> 1
GO_LIVE = """
redis.call('HSET', KEYS[6], 'live', 1, 'last_tick', ARGV[1])
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[6], 'resume_at', ARGV[2])
end
return 1
"""

# -> {waiting, admitted (live), rate, turnover (slots freed per ms when all are taken), lag ms,
#     sessions ended, their summed length ms}
STATS = """
local m = redis.call('HMGET', KEYS[6], 'rate', 'turnover', 'lag', 'n_end', 'sum_end')
return {
  redis.call('ZCARD', KEYS[1]),
  redis.call('ZCOUNT', KEYS[3], '(' .. ARGV[1], '+inf'),
  m[1] or '0', m[2] or '0', m[3] or '0', m[4] or '0', m[5] or '0',
}
"""

# The operators' view of who is in the queue: the first `limit` waiting (in line order) and
# the first `limit` admitted (soonest to run out first), with the totals; one atomic read,
# O(log N + limit). ARGV: now, limit
# -> {waiting, admitted (live), {user, order key, ...}, {user, admitted until, ...}}
PEEK = """
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
return {
  redis.call('ZCARD', KEYS[1]),
  redis.call('ZCOUNT', KEYS[3], '(' .. now, '+inf'),
  redis.call('ZRANGE', KEYS[1], 0, limit - 1, 'WITHSCORES'),
  redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, limit),
}
"""


def _constants_into_lua() -> None:
    """The Python constants above, written into the scripts that name them."""
    import re

    constants = {
        name: repr(value)
        for name, value in globals().items()
        if re.fullmatch(r"[A-Z][A-Z_]+", name) and isinstance(value, int | float)
    }
    pattern = re.compile(r"\b(" + "|".join(sorted(constants, key=len, reverse=True)) + r")\b")
    for name in ("POLL_GATE", "STATUS", "ENTER", "RESTORE", "END", "TICK"):
        globals()[name] = pattern.sub(lambda match: constants[match[1]], globals()[name])


_constants_into_lua()
