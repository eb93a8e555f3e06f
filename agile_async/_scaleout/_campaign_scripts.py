"""The Lua scripts of the Redis campaign: loading, handing out chunks, fencing, settling.

Every key of one campaign shares the hash tag ``{agile:c:<cid>}`` (one cluster slot), and
every script takes the same seven keys, in this order (:data:`KEY_SUFFIXES`):

```
KEYS[1] :meta    hash    definition (JSON), chunk size C, loaded (last seq recorded), done,
                         stop (a sticky account error code: the whole fleet stops) with
                         stop_reason and stop_at (why and when, for `status`);
                         held:<n> = a chunk set aside (JSON: reason r, takeovers t, rows
                         held h, time at, the stream entry's rows m); qid:<n> = the stream
                         id of a chunk re-queued by an operator (otherwise <n>-1);
                         tk:<n> = takeovers of chunk n with rows in flight
KEYS[2] :q       stream  one entry per chunk, explicit id <n>-1, field m = the chunk's
                         sendable rows as JSON; consumer group "senders"
KEYS[3] :s       string  one byte per row, at offset seq-1: P pending, I in flight,
                         A accepted, F failed, U unknown
KEYS[4] :tok     hash    chunk n -> the token of the worker that owns it now
KEYS[5] :tokold  hash    chunk n -> the previous owner's token (may only upgrade U -> A/F)
KEYS[6] :fail    hash    seq -> why the row failed or is unknown (JSON), with its id
KEYS[7] :stats   hash    P I A F U (row counts), H (pending rows held back, also in P),
                         parts, credit, tokens (a counter)
```

Row ``seq`` belongs to chunk ``n = (seq-1) // C + 1``. The state counters are kept by the
scripts themselves, so ``status`` never scans the state string. Each script is idempotent
for a given token: a client may retry it after a connection blip.
"""

from __future__ import annotations

__all__ = [
    "APPEND",
    "CLAIM",
    "CLEAR_STOP",
    "GROUP",
    "HEARTBEAT",
    "KEY_SUFFIXES",
    "NEXT",
    "READ_HELD",
    "READ_STOP",
    "REQUEUE",
    "SETTLE",
    "STOP",
]

#: The consumer group every worker reads through.
GROUP = "senders"

#: The suffixes of a campaign's keys, in the order every script takes them.
KEY_SUFFIXES = ("meta", "q", "s", "tok", "tokold", "fail", "stats")

#: Helpers shared by every script.
_PRELUDE = """
local META, Q, S, TOK, TOKOLD, FAIL, STATS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5],
  KEYS[6], KEYS[7]
local GROUP = 'senders'

local function chunk_size()
  return tonumber(redis.call('HGET', META, 'C'))
end

-- The chunk's bytes in the state string, and the offset of its first row.
local function chunk_range(n, c)
  local first = (n - 1) * c
  return first, redis.call('GETRANGE', S, first, first + c - 1)
end

-- How often `ch` occurs in `s` (a plain character, not a pattern).
local function count(s, ch)
  local k = 0
  for _ in string.gmatch(s, ch) do
    k = k + 1
  end
  return k
end

-- The stream id of chunk n: <n>-1, or a new one once an operator re-queued it.
local function entry_id(n)
  return redis.call('HGET', META, 'qid:' .. n) or (n .. '-1')
end

-- Acknowledge and delete a chunk once none of its rows is pending or in flight.
local function ack_if_done(n, c)
  local _, bytes = chunk_range(n, c)
  if string.find(bytes, '[PI]') then
    return false
  end
  local id = entry_id(n)
  redis.call('XACK', Q, GROUP, id)
  redis.call('XDEL', Q, id)
  redis.call('HDEL', TOK, n)
  redis.call('HDEL', META, 'qid:' .. n, 'tk:' .. n)
  return true
end
"""

#: ``append(first, last, done, states, n, entry, max_queued)`` records one chunk of rows.
#: Replies ``{1, loaded}`` when recorded, ``{0, loaded}`` when already there (a resumed
#: loader), ``{2, loaded}`` when the stream is full (the loader waits), ``{-1, loaded}`` on
#: a gap (rows skipped: a bug, nothing is written).
APPEND = (
    _PRELUDE
    + """
local first, last = tonumber(ARGV[1]), tonumber(ARGV[2])
local loaded = tonumber(redis.call('HGET', META, 'loaded') or '0')
if last < first then
  if ARGV[3] == '1' then redis.call('HSET', META, 'done', '1') end
  return {1, loaded}
end
if last <= loaded then
  return {0, loaded}
end
if first ~= loaded + 1 then
  return {-1, loaded}
end
local max_queued = tonumber(ARGV[7])
if ARGV[6] ~= '' and max_queued > 0 and redis.call('XLEN', Q) >= max_queued then
  return {2, loaded}
end
local states = ARGV[4]
redis.call('SETRANGE', S, first - 1, states)
redis.call('HINCRBY', STATS, 'P', count(states, 'P'))
redis.call('HINCRBY', STATS, 'F', count(states, 'F'))
for i = 8, #ARGV, 2 do
  redis.call('HSET', FAIL, ARGV[i], ARGV[i + 1])
end
if ARGV[6] ~= '' then
  redis.call('XADD', Q, ARGV[5] .. '-1', 'm', ARGV[6])
end
redis.call('HSET', META, 'loaded', last)
if ARGV[3] == '1' then redis.call('HSET', META, 'done', '1') end
return {1, last}
"""
)

#: ``next(worker, lease_ms, max_takeovers, now)``: the next chunk for ``worker``, with a
#: fresh token. Replies ``{'stop', code}`` after an account error anywhere; ``{'chunk', n,
#: token, rows_json, became_unknown}``; ``{'again', became_unknown}`` when a reclaimed
#: chunk turned out to be finished (acknowledged now: ask again); ``{'held', n,
#: became_unknown, held}`` when a reclaimed chunk has now been taken over from
#: ``max_takeovers`` silent workers (0: no limit) and is set aside (ask again);
#: ``{'empty', done}``, ``done`` = 1 when loading is over and every chunk is acknowledged
#: or set aside.
#:
#: A takeover counts when the chunk had rows in flight (its owner died or stalled while
#: sending it; ``tk:<n>`` in ``:meta``): the chunks a dead worker had only taken ahead are
#: not suspected. A chunk
#: set aside leaves the stream (so the fleet goes on and can finish); its rows in flight
#: became unknown as in any takeover, its pending rows stay pending (never sent, not the
#: message's fault) and are counted in ``H``; its entry and the reason are kept in
#: ``held:<n>`` until an operator re-queues it (:data:`REQUEUE`).
NEXT = (
    _PRELUDE
    + """
local stop = redis.call('HGET', META, 'stop')
if stop then
  return {'stop', stop}
end
local worker, lease = ARGV[1], ARGV[2]
local c = chunk_size()
local entry = nil
local reclaimed = false
local got = redis.call('XAUTOCLAIM', Q, GROUP, worker, lease, '0-0', 'COUNT', 1)
if got[2][1] then
  entry = got[2][1]
  reclaimed = true
else
  local read = redis.call('XREADGROUP', 'GROUP', GROUP, worker, 'COUNT', 1, 'STREAMS', Q, '>')
  if read and read[1] and read[1][2][1] then
    entry = read[1][2][1]
  end
end
if not entry then
  local done = redis.call('HGET', META, 'done') == '1' and redis.call('XLEN', Q) == 0
  return {'empty', done and 1 or 0}
end
local n = tonumber(entry[2][4] or string.match(entry[1], '^(%d+)-'))
local unknown = 0
if reclaimed then
  local old = redis.call('HGET', TOK, n)
  if old then redis.call('HSET', TOKOLD, n, old) end
  local first, bytes = chunk_range(n, c)
  unknown = count(bytes, 'I')
  if unknown > 0 then
    -- The previous owner may have sent these: they are unknown, never sent again.
    for _, row in ipairs(cjson.decode(entry[2][2])) do
      local seq = row[1]
      if string.sub(bytes, seq - first, seq - first) == 'I' then
        redis.call('SETRANGE', S, seq - 1, 'U')
        redis.call('HSET', FAIL, seq, cjson.encode({k = 'crash', i = row[2], d = row[3]}))
      end
    end
    redis.call('HINCRBY', STATS, 'I', -unknown)
    redis.call('HINCRBY', STATS, 'U', unknown)
  end
  local takeovers = 0
  if unknown > 0 then  -- its owner died while sending it (a chunk it only held is innocent)
    takeovers = redis.call('HINCRBY', META, 'tk:' .. n, 1)
  end
  if ack_if_done(n, c) then
    return {'again', unknown}
  end
  local max_takeovers = tonumber(ARGV[3] or '0')
  if max_takeovers > 0 and takeovers >= max_takeovers then
    local _, now_bytes = chunk_range(n, c)
    local held = count(now_bytes, 'P')
    redis.call('HSET', META, 'held:' .. n, cjson.encode({
      r = 'taken over from ' .. takeovers .. ' worker(s) that went silent (crashed or '
        .. 'stalled) while sending it',
      t = takeovers, h = held, at = ARGV[4], m = entry[2][2]}))
    redis.call('XACK', Q, GROUP, entry[1])
    redis.call('XDEL', Q, entry[1])
    redis.call('HDEL', TOK, n)
    redis.call('HDEL', META, 'qid:' .. n, 'tk:' .. n)
    redis.call('HINCRBY', STATS, 'H', held)
    return {'held', n, unknown, held}
  end
end
local token = worker .. ':' .. redis.call('HINCRBY', STATS, 'tokens', 1)
redis.call('HSET', TOK, n, token)
local rows = entry[2][2]
return {'chunk', n, token, rows, unknown}
"""
)

#: ``claim(ntok, (n, token)*, seqs...)``: mark rows in flight before their POST.
#: Replies ``{'ok'}``; ``{'stop', code}`` after an account error anywhere; ``{'fenced', n}``
#: when a chunk has another owner now; ``{'state', seq, byte}`` when a row already has an
#: outcome. Nothing is changed unless the reply is ``ok``.
CLAIM = (
    _PRELUDE
    + """
local stop = redis.call('HGET', META, 'stop')
if stop then
  return {'stop', stop}
end
local ntok = tonumber(ARGV[1])
for i = 0, ntok - 1 do
  local n, token = ARGV[2 + 2 * i], ARGV[3 + 2 * i]
  if redis.call('HGET', TOK, n) ~= token then
    return {'fenced', n}
  end
end
local first = 2 + 2 * ntok
local pending = {}
for i = first, #ARGV do
  local seq = tonumber(ARGV[i])
  local b = redis.call('GETRANGE', S, seq - 1, seq - 1)
  if b == 'P' then
    pending[#pending + 1] = seq
  elseif b ~= 'I' then
    return {'state', seq, b}
  end
end
for _, seq in ipairs(pending) do
  redis.call('SETRANGE', S, seq - 1, 'I')
end
if #pending > 0 then  -- (Lua's -0 would reach Redis as "-0", not an integer)
  redis.call('HINCRBY', STATS, 'P', -#pending)
  redis.call('HINCRBY', STATS, 'I', #pending)
end
return {'ok'}
"""
)

#: ``settle(outcome, parts, credit, ntok, (n, token)*, (seq, reason)*)``: record outcomes.
#: ``outcome`` is ``A``, ``F``, ``U`` or ``P`` (the request provably never went). With the
#: chunk's current token, an in-flight row takes the outcome (a pending row may fail); with
#: the previous token (the owner was presumed dead), only ``U`` may become ``A`` or ``F``;
#: any other token changes nothing. Chunks left with no pending or in-flight row are
#: acknowledged and deleted. Replies ``{changed, ignored, acked...}``, ``ignored`` counting
#: the rows of chunks this token no longer owns.
SETTLE = (
    _PRELUDE
    + """
local outcome, parts, credit = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local ntok = tonumber(ARGV[4])
local c = chunk_size()
local mode = {}
for i = 0, ntok - 1 do
  local n, token = ARGV[5 + 2 * i], ARGV[6 + 2 * i]
  if redis.call('HGET', TOK, n) == token then
    mode[tonumber(n)] = 'current'
  elseif redis.call('HGET', TOKOLD, n) == token then
    mode[tonumber(n)] = 'late'
  end
end
local changed, ignored = 0, 0
for i = 5 + 2 * ntok, #ARGV, 2 do
  local seq, reason = tonumber(ARGV[i]), ARGV[i + 1]
  local m = mode[math.floor((seq - 1) / c) + 1]
  local b = redis.call('GETRANGE', S, seq - 1, seq - 1)
  local ok = false
  if m == 'current' then
    ok = b == 'I' or (b == 'P' and outcome == 'F')
  elseif m == 'late' then
    ok = b == 'U' and (outcome == 'A' or outcome == 'F')
  end
  if ok and b ~= outcome then
    redis.call('SETRANGE', S, seq - 1, outcome)
    redis.call('HINCRBY', STATS, b, -1)
    redis.call('HINCRBY', STATS, outcome, 1)
    if outcome == 'F' or outcome == 'U' then
      redis.call('HSET', FAIL, seq, reason)
    elseif b == 'U' then
      redis.call('HDEL', FAIL, seq)
    end
    changed = changed + 1
  elseif m ~= 'current' and not ok then
    ignored = ignored + 1
  end
end
if outcome == 'A' and changed > 0 then
  redis.call('HINCRBY', STATS, 'parts', parts)
  redis.call('HSET', STATS, 'credit', credit)
end
local reply = {changed, ignored}
for n, m in pairs(mode) do
  if m == 'current' and ack_if_done(n, c) then
    reply[#reply + 1] = n
  end
end
return reply
"""
)

#: ``heartbeat(worker, (n, token)*)``: keep the worker's chunks from being reclaimed.
#: Only chunks it still owns are renewed (``XCLAIM ... JUSTID`` resets their idle time);
#: replies the chunks another worker owns now, so it stops sending from them. A chunk with
#: no owner was finished (a settle racing with the heartbeat): it is not lost.
HEARTBEAT = (
    _PRELUDE
    + """
local worker = ARGV[1]
local ids, lost = {}, {}
for i = 2, #ARGV, 2 do
  local n, token = ARGV[i], ARGV[i + 1]
  local owner = redis.call('HGET', TOK, n)
  if owner == token then
    ids[#ids + 1] = entry_id(n)
  elseif owner then  -- (no owner: the chunk was just finished, by this worker's settle)
    lost[#lost + 1] = n
  end
end
if #ids > 0 then
  ids[#ids + 1] = 'JUSTID'  -- resets the idle time, leaves the delivery count alone
  redis.call('XCLAIM', Q, GROUP, worker, 0, unpack(ids))
end
return lost
"""
)

#: ``stop(code, reason, at)``: a sticky, fleet-wide stop after an account error; the first
#: code stays, with its reason and time. Replies ``{code, reason, at}`` of the stop in force.
STOP = (
    _PRELUDE
    + """
if redis.call('HSETNX', META, 'stop', ARGV[1]) == 1 then
  redis.call('HSET', META, 'stop_reason', ARGV[2], 'stop_at', ARGV[3])
end
return redis.call('HMGET', META, 'stop', 'stop_reason', 'stop_at')
"""
)

#: ``read_stop()``: the stop in force, ``{code, reason, at}`` (``code`` nil when none).
READ_STOP = "return redis.call('HMGET', KEYS[1], 'stop', 'stop_reason', 'stop_at')"

#: ``clear_stop()``: an operator lifts the fleet-wide stop; replies what was cleared
#: (``{code, reason, at}``, ``code`` nil when there was none).
CLEAR_STOP = """
local was = redis.call('HMGET', KEYS[1], 'stop', 'stop_reason', 'stop_at')
redis.call('HDEL', KEYS[1], 'stop', 'stop_reason', 'stop_at')
return was
"""

#: ``read_held()``: the chunks set aside, ``{n, json, n, json, ...}`` (the rows left out).
READ_HELD = """
local reply = {}
local cursor = '0'
repeat
  local page = redis.call('HSCAN', KEYS[1], cursor, 'MATCH', 'held:*', 'COUNT', 100)
  cursor = page[1]
  for i = 1, #page[2], 2 do
    local record = cjson.decode(page[2][i + 1])
    record.m = nil
    reply[#reply + 1] = string.sub(page[2][i], 6)
    reply[#reply + 1] = cjson.encode(record)
  end
until cursor == '0'
return reply
"""

#: ``requeue(n...)``: an operator puts chunks set aside back on the stream (every one when
#: no ``n`` is given), each with a new entry (field ``n`` names the chunk) and so a fresh
#: takeover count. Replies ``{chunks, rows}`` re-queued.
REQUEUE = (
    _PRELUDE
    + """
local wanted = {}
if #ARGV == 0 then
  local cursor = '0'
  repeat
    local page = redis.call('HSCAN', META, cursor, 'MATCH', 'held:*', 'COUNT', 100)
    cursor = page[1]
    for i = 1, #page[2], 2 do
      wanted[#wanted + 1] = string.sub(page[2][i], 6)
    end
  until cursor == '0'
else
  wanted = ARGV
end
local chunks, rows = 0, 0
for _, n in ipairs(wanted) do
  local text = redis.call('HGET', META, 'held:' .. n)
  if text then
    local record = cjson.decode(text)
    local id = redis.call('XADD', Q, '*', 'm', record.m, 'n', n)
    redis.call('HSET', META, 'qid:' .. n, id)
    redis.call('HDEL', META, 'held:' .. n)
    redis.call('HINCRBY', STATS, 'H', -record.h)
    chunks = chunks + 1
    rows = rows + record.h
  end
end
return {chunks, rows}
"""
)
