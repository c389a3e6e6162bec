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
Times are milliseconds from the application's clock, passed in ARGV; only the order of
arrival comes from Redis's own clock, so that it is one clock for every web node.

The abandonment clock is wall time minus the time the service was not answering
(`outage_ms`): a poll records `now - outage_ms`, and the tick drops whoever has not polled
for abandon_after on that clock. The tick runs every second; a gap between two ticks far
longer than that means the service was down (the database or Redis: the tick needs both),
and the gap is added to `outage_ms`, so nobody loses their place for polls that could not
be answered.
"""

KEY_NAMES = ("waiting", "seen", "admitted", "entries", "ended", "meta", "counts")

POST_OPENING_BASE = 2**41  # order keys of post-opening arrivals start here; random ones below

# A gap between ticks longer than this is an outage (beat sends one a second).
OUTAGE_GAP_MS = 3_000
TICK_INTERVAL_MS = 1_000


# Where the entry `nonce` of `user` stands; touch '1': a waiting poll keeps the entry alive.
# -> {'unknown'} (Redis has no entry of the user: it lost it, or never had it)
#  | {'invalid'} (the user's current entry is another one: the token was replaced)
#  | {'ended', reason} | {'admitted', until} | {'waiting', position, rate, active}
ENTRY_STATUS = """
local function nonce_of(entry) return string.sub(entry, 1, 16) end
local function order_of(entry) return string.sub(entry, 18) end

local function abandon_clock(now)
  return now - tonumber(redis.call('HGET', KEYS[6], 'outage_ms') or '0')
end

local function entry_status(user, nonce, now, touch)
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
      return {'admitted', admitted_until}
    end
    return {'ended', 'expired'}
  end
  local rank = redis.call('ZRANK', KEYS[1], user)
  if rank then
    if touch == '1' then
      redis.call('ZADD', KEYS[2], abandon_clock(now), user)
    end
    return {'waiting', rank + 1, redis.call('HGET', KEYS[6], 'rate') or '',
            redis.call('ZCOUNT', KEYS[3], '(' .. now, '+inf')}
  end
  return {'ended', 'expired'}
end
"""

# ARGV: user, nonce, now, touch -> entry_status
STATUS = (
    ENTRY_STATUS
    + """
return entry_status(ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4])
"""
)

# ARGV: user, new nonce, now, pre-opening (1/0), random order key
# -> {nonce, order key, created (1/0), then the entry's status as STATUS gives it}: one round
# trip for what a customer entering needs to see.
ENTER = (
    ENTRY_STATUS
    + """
local user, new_nonce, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local entry = redis.call('HGET', KEYS[4], user)
-- (HEXISTS answers 0 or 1, and 0 is true in Lua: compare, never test it bare.)
if entry and redis.call('HEXISTS', KEYS[5], user) == 0 then
  local nonce, waiting = nonce_of(entry), redis.call('ZSCORE', KEYS[1], user)
  local admitted_until = redis.call('ZSCORE', KEYS[3], user)
  if waiting or (admitted_until and tonumber(admitted_until) > now) then
    if waiting then redis.call('ZADD', KEYS[2], abandon_clock(now), user) end
    return {nonce, order_of(entry), 0, unpack(entry_status(user, nonce, now, '0'))}
  end
end
-- No live entry (never entered, or the last one ended): a new one, at the back of the line.
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
return {new_nonce, order, 1, unpack(entry_status(user, new_nonce, now, '0'))}
""".replace("POST_OPENING_BASE", str(POST_OPENING_BASE))
)

# Put back an entry Redis lost, from what survived it: the customer's signed token (nonce and
# order key) and, for an admitted customer, the admission recorded in the database. An
# admitted session goes back only while fewer than max_active are admitted: capacity holds
# by construction, whatever the database says; one that finds no room goes back to the line
# at its own (early) order key, next to be let in.
# ARGV: user, nonce, order key, now, admitted until (ms; '' while waiting), max_active
# -> entry_status
RESTORE = (
    ENTRY_STATUS
    + """
local user, nonce, now = ARGV[1], ARGV[2], tonumber(ARGV[4])
if redis.call('HEXISTS', KEYS[4], user) == 0 then
  redis.call('HSET', KEYS[4], user, nonce .. ':' .. ARGV[3])
  local room = ARGV[5] ~= '' and
    redis.call('ZCOUNT', KEYS[3], '(' .. now, '+inf') < tonumber(ARGV[6])
  if room then
    redis.call('ZADD', KEYS[3], tonumber(ARGV[5]), user)
  else
    redis.call('ZADD', KEYS[1], tonumber(ARGV[3]), user)
    redis.call('ZADD', KEYS[2], abandon_clock(now), user)
  end
end
return entry_status(user, nonce, now, '0')
"""
)

# ARGV: user, nonce (empty: the user's admitted entry, if any), reason (left | done)
# -> {'invalid'} | {previous state}
END = """
local user = ARGV[1]
local entry = redis.call('HGET', KEYS[4], user)
if not entry or (ARGV[2] ~= '' and string.sub(entry, 1, 16) ~= ARGV[2]) then
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
redis.call('ZREM', KEYS[1], user)
redis.call('ZREM', KEYS[2], user)
redis.call('HSET', KEYS[5], user, ARGV[3])
if was_admitted == 1 then return {'admitted'} end
return {'waiting'}
"""

# ARGV: now, admitting (1/0), max_active, admit_per_minute, admitted_ms, abandon_after_ms
#       (-1: nobody is dropped yet)
# -> {'new'} when this Redis has not been set up for the concert (first tick ever, or Redis
#    lost its data): the caller restores what the database knows, marks it live, ticks again
#  | {admitted now, active, waiting, rate per second, user, "nonce:order", user, ...}
TICK = """
local now = tonumber(ARGV[1])
if redis.call('HEXISTS', KEYS[6], 'live') == 0 then
  return {'new'}
end
local max_active, per_minute = tonumber(ARGV[3]), tonumber(ARGV[4])
local admitted_ms, abandon_after = tonumber(ARGV[5]), tonumber(ARGV[6])

-- The service did not answer between the last tick and this one: pause the abandonment clock
-- for that long.
local last_tick = tonumber(redis.call('HGET', KEYS[6], 'last_tick') or now)
local outage = tonumber(redis.call('HGET', KEYS[6], 'outage_ms') or '0')
if now - last_tick > OUTAGE_GAP_MS then
  outage = outage + (now - last_tick) - TICK_INTERVAL_MS
  redis.call('HSET', KEYS[6], 'outage_ms', outage)
end
if now > last_tick then
  redis.call('HSET', KEYS[6], 'last_tick', now)
end

-- Admitted sessions that ran out free their slots (their status reads 'expired').
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)

-- Waiting customers who stopped polling lose their place, a bounded batch per tick.
if abandon_after >= 0 then
  local cutoff = now - outage - abandon_after
  local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', cutoff, 'LIMIT', 0, 1000)
  for _, user in ipairs(stale) do
    redis.call('ZREM', KEYS[1], user)
    redis.call('ZREM', KEYS[2], user)
    redis.call('HSET', KEYS[5], user, 'abandoned')
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
      redis.call('ZADD', KEYS[3], now + admitted_ms, user)
      reply[#reply + 1] = user
      reply[#reply + 1] = redis.call('HGET', KEYS[4], user) or ''

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
-- (Appended one by one, not unpack()ed: Lua's stack takes some 8,000 values, and a big
-- batch of admissions is twice that.)
local result = {admitted, active + admitted, redis.call('ZCARD', KEYS[1]), tostring(rate)}
for i = 1, #reply do result[#result + 1] = reply[i] end
return result
""".replace("OUTAGE_GAP_MS", str(OUTAGE_GAP_MS)).replace("TICK_INTERVAL_MS", str(TICK_INTERVAL_MS))

# Marks this Redis as set up for the concert, after the caller restored the admitted sessions
# the database knows. ARGV: now, resume_at (ms; 0: admit at once) -> 1
GO_LIVE = """
redis.call('HSET', KEYS[6], 'live', 1, 'last_tick', ARGV[1])
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[6], 'resume_at', ARGV[2])
end
return 1
"""

# -> {waiting, admitted (live), rate}
STATS = """
return {
  redis.call('ZCARD', KEYS[1]),
  redis.call('ZCOUNT', KEYS[3], '(' .. ARGV[1], '+inf'),
  redis.call('HGET', KEYS[6], 'rate') or '0',
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
