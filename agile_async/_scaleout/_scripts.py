"""The Lua scripts of the shared rate limiter: GCRA "reserve N" on the Redis server's clock.

Keys of one account share the hash tag ``{agile:l:<acct>}`` (one cluster slot):

```
{agile:l:<acct>}:cfg   hash    spec (the limits, as text), f (rate factor, ppm), t0 (µs: when
                               f starts climbing back), pause (µs: the end of a 429's pause)
{agile:l:<acct>}:m :p :r       string  the bucket's TAT (theoretical arrival time), µs since the
                               epoch; PX expiry when it is no longer ahead of the clock
```

Every time is an integer number of microseconds on the server's clock (``TIME``), so hosts
with skewed clocks still share one limit. Rates and bursts go in as decimal strings (tokens
per second, tokens); the interval per token is ``1e12 / (rate * f)`` µs at the current factor
``f`` (parts per million). Emission times round up and the burst's tolerance rounds down, so
rounding only ever errs on the slow side. Numbers written to Redis are formatted with
``%.0f`` explicitly: µs since the epoch have 16 digits and Lua's ``tostring`` keeps 14.
Replies hold integers and strings only (a Lua float would be truncated on the way out).

Each script is :data:`CLOCK` + :data:`PRELUDE` + its body (:func:`build`), and takes the same
first arguments:

* ``KEYS[1]`` = the ``:cfg`` hash; ``KEYS[2..]`` = the TAT keys, one per bucket.
* ``ARGV[1]`` = the spec; ``ARGV[2]`` = the config's idle TTL (ms); ``ARGV[3]`` = the
  recovery time after a 429 (µs). A spec that differs from the stored one is refused with
  ``{-2, stored_spec}`` and changes nothing.
"""

from __future__ import annotations

__all__ = [
    "CLOCK",
    "CONFIGURE",
    "CONFIGURE_BODY",
    "PENALIZE",
    "PENALIZE_BODY",
    "PRELUDE",
    "RESERVE",
    "RESERVE_BODY",
    "build",
]

#: The clock: the server's, in integer µs since the epoch. (Tests swap in a frozen one.)
CLOCK = """
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
"""

#: Helpers shared by every script (Lua 5.1, as embedded in Redis); they follow the clock.
PRELUDE = """
local function int(x)
  return string.format('%.0f', x)
end

-- The account's config, created when absent; nil and the stored spec when it differs.
local function load_config(now)
  local cfg = KEYS[1]
  local got = redis.call('HMGET', cfg, 'spec', 'f', 't0', 'pause')
  local c
  if not got[1] then
    c = {f0 = 1000000, t0 = now, pause = 0}
    redis.call('HSET', cfg, 'spec', ARGV[1], 'f', int(c.f0), 't0', int(now), 'pause', '0')
  elseif got[1] ~= ARGV[1] then
    return nil, got[1]
  else
    c = {f0 = tonumber(got[2]), t0 = tonumber(got[3]), pause = tonumber(got[4])}
  end
  redis.call('PEXPIRE', cfg, ARGV[2])
  return c
end

-- The rate factor (ppm) now: f0 until t0, then climbing linearly back to 1 over `recovery`.
local function factor(c, now)
  if now <= c.t0 then
    return c.f0
  end
  return math.min(1000000, c.f0 + math.floor((now - c.t0) * 1000000 / tonumber(ARGV[3])))
end

local function tat_of(key, now)
  local tat = tonumber(redis.call('GET', key) or 0)
  if tat < now then
    return now
  end
  return tat
end

local function store_tat(key, tat, now)
  if tat > now then
    redis.call('SET', key, int(tat), 'PX', int(math.ceil((tat - now) / 1000)))
  end
end
"""


def build(body: str, *, clock: str = CLOCK) -> str:
    """A whole script: the clock, the shared helpers, then ``body``."""
    return clock + PRELUDE + body


#: Check (or create) the config and refresh its TTL: the start-up check and the heartbeat.
#: Reply: ``{1, factor_ppm, pause_left_us}``, or ``{-2, stored_spec}``.
CONFIGURE_BODY = """
local now = now_us()
local c, stored = load_config(now)
if not c then
  return {-2, stored}
end
return {1, factor(c, now), math.max(0, c.pause - now)}
"""

#: Reserve ``cost`` tokens in every bucket at once, or in none.
#: ``ARGV[4]`` = max wait (µs); then ``cost, burst, rate`` per bucket.
#: Reply: ``{1, wait_us}`` reserved: go after ``wait_us``; ``{0, wait_us}`` the wait would
#: exceed the max, nothing reserved; ``{-1, i}`` bucket ``i`` (1-based) can never hold the
#: cost (cost > burst); ``{-2, stored_spec}``.
RESERVE_BODY = """
local now = now_us()
local c, stored = load_config(now)
if not c then
  return {-2, stored}
end
local f = factor(c, now)
local new, wait = {}, 0
for i = 1, #KEYS - 1 do
  local cost = tonumber(ARGV[3 * i + 2])
  local burst = tonumber(ARGV[3 * i + 3])
  local us_per_token = 1e12 / (tonumber(ARGV[3 * i + 4]) * f)
  if cost > burst then
    return {-1, i}
  end
  new[i] = tat_of(KEYS[i + 1], now) + math.ceil(cost * us_per_token)
  local w = new[i] - math.floor(burst * us_per_token) - now
  if w > wait then
    wait = w
  end
end
if wait > tonumber(ARGV[4]) then
  return {0, wait}
end
for i = 1, #KEYS - 1 do
  store_tat(KEYS[i + 1], new[i], now)
end
return {1, wait}
"""

#: A 429: pause every bucket for ``ARGV[4]`` µs, leaving it empty at the end of the pause, and
#: halve the rate factor (not below ``ARGV[5]`` ppm) unless a pause is already under way (so
#: the 429s of requests sent before the pause was known, and retries of this script, halve it
#: once). The factor starts climbing back when the pause ends. Then ``burst, rate`` per bucket.
#: Reply: ``{1, factor_ppm, pause_left_us}``, or ``{-2, stored_spec}``.
PENALIZE_BODY = """
local now = now_us()
local c, stored = load_config(now)
if not c then
  return {-2, stored}
end
local f = factor(c, now)
if now >= c.pause then
  f = math.max(tonumber(ARGV[5]), math.floor(f / 2))
end
local pause = math.max(c.pause, now + tonumber(ARGV[4]))
redis.call('HSET', KEYS[1], 'f', int(f), 't0', int(pause), 'pause', int(pause))
for i = 1, #KEYS - 1 do
  local burst = tonumber(ARGV[2 * i + 4])
  local us_per_token = 1e12 / (tonumber(ARGV[2 * i + 5]) * f)
  local empty_at_end = pause + math.floor(burst * us_per_token)
  store_tat(KEYS[i + 1], math.max(tat_of(KEYS[i + 1], now), empty_at_end), now)
end
return {1, f, pause - now}
"""

CONFIGURE = build(CONFIGURE_BODY)
RESERVE = build(RESERVE_BODY)
PENALIZE = build(PENALIZE_BODY)
