"""The waiting room's Redis scripts. Each runs atomically, so no read-modify-write race exists
between gunicorn workers and Celery processes.

Every script gets the same KEYS, all of one concert and one hash tag (one Cluster slot):
  1 waiting   ZSET user -> order key (pre-opening: random below 2^41; after: 2^41 + arrival seq)
  2 seen      ZSET user -> last poll (ms), waiting users only; for abandonment
  3 admitted  ZSET user -> admitted until (ms)
  4 entries   HASH user -> nonce of the user's current entry (what its token names)
  5 ended     HASH user -> why the current entry ended: left | done | abandoned
  6 meta      HASH seq, bucket, bucket_ms (admission token bucket), window_start, rate
  7 counts    HASH second -> admissions in that second, for the measured rate (last 60 s)
Times are milliseconds from the application's clock, passed in ARGV.
"""

KEY_NAMES = ("waiting", "seen", "admitted", "entries", "ended", "meta", "counts")

POST_OPENING_BASE = 2**41  # order keys of post-opening arrivals start here; random ones below


# Where the entry `nonce` of `user` stands; touch '1': a waiting poll keeps the entry alive.
# -> {'invalid'} | {'ended', reason} | {'admitted', until} | {'waiting', position, rate}
ENTRY_STATUS = """
local function entry_status(user, nonce, now, touch)
  if redis.call('HGET', KEYS[4], user) ~= nonce then
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
      redis.call('ZADD', KEYS[2], now, user)
    end
    return {'waiting', rank + 1, redis.call('HGET', KEYS[6], 'rate') or ''}
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
# -> {state, nonce, created (1/0), then the entry's status as STATUS gives it}: one round trip
# for what a customer entering needs to see.
ENTER = (
    ENTRY_STATUS
    + """
local user, new_nonce, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local nonce = redis.call('HGET', KEYS[4], user)
-- (HEXISTS answers 0 or 1, and 0 is true in Lua: compare, never test it bare.)
if nonce and redis.call('HEXISTS', KEYS[5], user) == 0 then
  if redis.call('ZSCORE', KEYS[1], user) then
    redis.call('ZADD', KEYS[2], now, user)
    return {'waiting', nonce, 0, unpack(entry_status(user, nonce, now, '0'))}
  end
  local admitted_until = redis.call('ZSCORE', KEYS[3], user)
  if admitted_until and tonumber(admitted_until) > now then
    return {'admitted', nonce, 0, unpack(entry_status(user, nonce, now, '0'))}
  end
end
-- No live entry (never entered, or the last one ended): a new one, at the back of the line.
redis.call('ZREM', KEYS[3], user)
redis.call('HDEL', KEYS[5], user)
redis.call('HSET', KEYS[4], user, new_nonce)
local order
if ARGV[4] == '1' then
  order = tonumber(ARGV[5])
else
  order = POST_OPENING_BASE + redis.call('HINCRBY', KEYS[6], 'seq', 1)
end
redis.call('ZADD', KEYS[1], order, user)
redis.call('ZADD', KEYS[2], now, user)
return {'waiting', new_nonce, 1, unpack(entry_status(user, new_nonce, now, '0'))}
""".replace("POST_OPENING_BASE", str(POST_OPENING_BASE))
)

# ARGV: user, nonce (empty: the user's admitted entry, if any), reason (left | done)
# -> {'invalid'} | {previous state}
END = """
local user = ARGV[1]
local nonce = redis.call('HGET', KEYS[4], user)
if not nonce or (ARGV[2] ~= '' and nonce ~= ARGV[2]) then
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

# ARGV: now, admitting (1/0), max_active, admit_per_minute, admitted_ms, abandon_cutoff (-1: none)
# -> {admitted now, active, waiting, rate per second}
TICK = """
local now = tonumber(ARGV[1])
local max_active, per_minute = tonumber(ARGV[3]), tonumber(ARGV[4])
local admitted_ms, cutoff = tonumber(ARGV[5]), tonumber(ARGV[6])

-- Admitted sessions that ran out free their slots (their status reads 'expired').
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)

-- Waiting customers who stopped polling lose their place, a bounded batch per tick.
if cutoff >= 0 then
  local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', cutoff, 'LIMIT', 0, 1000)
  for _, user in ipairs(stale) do
    redis.call('ZREM', KEYS[1], user)
    redis.call('ZREM', KEYS[2], user)
    redis.call('HSET', KEYS[5], user, 'abandoned')
  end
end

-- Token bucket: admit_per_minute, with at most two seconds' worth saved up, shared by every
-- concurrent tick; and never more admitted at once than max_active.
local burst = math.max(1, per_minute / 30)
local tokens = tonumber(redis.call('HGET', KEYS[6], 'bucket') or burst)
local last = tonumber(redis.call('HGET', KEYS[6], 'bucket_ms') or now)
tokens = math.min(burst, tokens + math.max(0, now - last) * per_minute / 60000)
local active = redis.call('ZCARD', KEYS[3])
local admitted = 0
if ARGV[2] == '1' then
  local room = math.min(math.floor(tokens), max_active - active)
  if room > 0 then
    local batch = redis.call('ZRANGE', KEYS[1], 0, room - 1)
    for _, user in ipairs(batch) do
      redis.call('ZREM', KEYS[1], user)
      redis.call('ZREM', KEYS[2], user)
      redis.call('ZADD', KEYS[3], now + admitted_ms, user)
    end
    admitted = #batch
    tokens = tokens - admitted
  end
end
redis.call('HSET', KEYS[6], 'bucket', tokens, 'bucket_ms', now)

-- Measured rate: admissions per second over the last minute (or since admission began).
local second = math.floor(now / 1000)
local window_start = tonumber(redis.call('HGET', KEYS[6], 'window_start') or '-1')
if ARGV[2] == '1' and window_start < 0 then
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
return {admitted, active + admitted, redis.call('ZCARD', KEYS[1]), tostring(rate)}
"""

# -> {waiting, admitted (live), rate}
STATS = """
return {
  redis.call('ZCARD', KEYS[1]),
  redis.call('ZCOUNT', KEYS[3], '(' .. ARGV[1], '+inf'),
  redis.call('HGET', KEYS[6], 'rate') or '0',
}
"""
