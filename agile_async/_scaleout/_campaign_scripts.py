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
                         parts, credit, tokens (a counter),
                         d1..d6 (rows by delivery status), confirmed
KEYS[8] :rows    hash    chunk n -> its sendable rows' [seq, destination(, id)] (JSON; the
                         id only when the input gave one): what export reads, bodies left out
KEYS[9] :ids     hash    message id -> seq, for ids the input gave (a generated id,
                         ``<campaign_id>-<seq>``, names its row: no index needed)
KEYS[10] :d      string  17 bytes per row at offset (seq-1)*17: the delivery status code
                         (1-6, NUL before any report), doneDate in ms since the epoch (13
                         digits, spaces when none), parts delivered (3 digits)
KEYS[11] :dv     hash    seq -> the full per-part DeliveryState (JSON), only while the
                         message is pending (not yet delivered or failed)
KEYS[12] :conf   hash    seq -> 1: accepted rows confirmed by a delivery report
KEYS[13] :redo   hash    chunk n -> "<token> <expiry ms>": a finished chunk reopened to send
                         its unknown rows again (``resend_unknown``), and its lease
```

An unknown row's reason (``:fail``) keeps its body and when it became unknown (``b``,
``t``): what ``resend_unknown`` needs once its chunk has left the stream.

Row ``seq`` belongs to chunk ``n = (seq-1) // C + 1``. The state counters are kept by the
scripts themselves, so ``status`` never scans the state string. Each script is idempotent
for a given token: a client may retry it after a connection blip.
"""

from __future__ import annotations

__all__ = [
    "APPEND",
    "CLAIM",
    "CLEAR_STOP",
    "DELIVERY_READ",
    "DELIVERY_WRITE",
    "GROUP",
    "HEARTBEAT",
    "KEY_SUFFIXES",
    "NEXT",
    "READ_CONFIRMED",
    "READ_HELD",
    "READ_ROWS",
    "READ_STOP",
    "RENEW",
    "REQUEUE",
    "RESEND",
    "SETTLE",
    "STOP",
]

#: The consumer group every worker reads through.
GROUP = "senders"

#: The suffixes of a campaign's keys, in the order every script takes them.
KEY_SUFFIXES = (
    "meta",
    "q",
    "s",
    "tok",
    "tokold",
    "fail",
    "stats",
    "rows",
    "ids",
    "d",
    "dv",
    "conf",
    "redo",
)

#: Bytes of one row's delivery record in the ``:d`` string.
DELIVERY_RECORD = 17

#: Helpers shared by every script.
_PRELUDE = """
local META, Q, S, TOK, TOKOLD, FAIL, STATS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5],
  KEYS[6], KEYS[7]
local GROUP = 'senders'
local ROWS, IDS, DLV, DLVSTATE, CONF = KEYS[8], KEYS[9], KEYS[10], KEYS[11], KEYS[12]
local REDO = KEYS[13]
local DREC = 17

-- Redis's clock, in ms (one clock for every host of the fleet).
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Whether row `seq` has a delivery report on record (its record starts with a code).
local function reported(seq)
  local b = redis.call('GETRANGE', DLV, (seq - 1) * DREC, (seq - 1) * DREC)
  return b ~= '' and b ~= '\0'
end

-- An unknown row that a delivery report proved taken: accepted, confirmed by report.
local function confirm(seq)
  redis.call('SETRANGE', S, seq - 1, 'A')
  redis.call('HINCRBY', STATS, 'U', -1)
  redis.call('HINCRBY', STATS, 'A', 1)
  redis.call('HDEL', FAIL, seq)
  if redis.call('HSETNX', CONF, seq, '1') == 1 then
    redis.call('HINCRBY', STATS, 'confirmed', 1)
  end
end

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

#: ``append(first, last, done, states, n, entry, max_queued, ids, index, (seq, reason)*)``
#: records one chunk of rows: ``ids`` is the chunk's export record (``:rows``), ``index``
#: a JSON object of the ids the input gave (id -> seq).
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
for i = 10, #ARGV, 2 do
  redis.call('HSET', FAIL, ARGV[i], ARGV[i + 1])
end
if ARGV[8] ~= '' then
  redis.call('HSET', ROWS, ARGV[5], ARGV[8])
end
for id, seq in pairs(cjson.decode(ARGV[9])) do
  redis.call('HSET', IDS, id, seq)
end
if ARGV[6] ~= '' then
  redis.call('XADD', Q, ARGV[5] .. '-1', 'm', ARGV[6])
end
redis.call('HSET', META, 'loaded', last)
if ARGV[3] == '1' then redis.call('HSET', META, 'done', '1') end
return {1, last}
"""
)

#: ``holders(prefix, first, last, id*)``: the row that holds each ``id`` as the id the input
#: gave it (``:ids``), then the row that holds each generated id ``<prefix><seq>`` for ``seq``
#: in ``first..last``, nil where none does; an empty reply when no row has an id of its own
#: (nothing can be taken: the usual campaign, asked nothing).
HOLDERS = (
    _PRELUDE
    + """
if redis.call('HLEN', IDS) == 0 then
  return {}
end
local found = {}
for i = 4, #ARGV do
  found[#found + 1] = redis.call('HGET', IDS, ARGV[i]) or false
end
for seq = tonumber(ARGV[2]), tonumber(ARGV[3]) do
  found[#found + 1] = redis.call('HGET', IDS, ARGV[1] .. seq) or false
end
return found
"""
)

#: ``id_records((n, seq)*)``: for each pair, chunk ``n``'s export record (``:rows``, whose
#: entries say whether a row's id is generated) and row ``seq``'s stored failure (a row
#: refused at load is not in the export record), each nil when there is none.
ID_RECORDS = (
    _PRELUDE
    + """
local found = {}
for i = 1, #ARGV, 2 do
  found[i] = redis.call('HGET', ROWS, ARGV[i]) or false
  found[i + 1] = redis.call('HGET', FAIL, ARGV[i + 1]) or false
end
return found
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
        redis.call('HSET', FAIL, seq,
          cjson.encode({k = 'crash', i = row[2], d = row[3], b = row[4], t = now_ms()}))
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
  if ok and outcome == 'U' and reported(seq) then
    -- A report came before the lost answer: the provider took it.
    if b == 'I' then
      redis.call('SETRANGE', S, seq - 1, 'U')
      redis.call('HINCRBY', STATS, 'I', -1)
      redis.call('HINCRBY', STATS, 'U', 1)
    end
    confirm(seq)
    changed = changed + 1
  elseif ok and b ~= outcome then
    redis.call('SETRANGE', S, seq - 1, outcome)
    redis.call('HINCRBY', STATS, b, -1)
    redis.call('HINCRBY', STATS, outcome, 1)
    if outcome == 'U' then  -- (the reason is JSON: it keeps when, for silent_for)
      redis.call('HSET', FAIL, seq, string.sub(reason, 1, -2) .. ',"t":' .. now_ms() .. '}')
    elseif outcome == 'F' then
      redis.call('HSET', FAIL, seq, reason)
    elseif outcome == 'A' then  -- (a row sent again keeps its body here until now)
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
    redis.call('HDEL', REDO, n)
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

#: ``delivery_read((id, derived_seq)*)``: each message's row and what is recorded of its
#: delivery. ``derived_seq`` is the row a generated id names (0 if the id is not one); an
#: id the input gave wins. Replies ``{seq, state, record, dv}`` per id, ``seq`` 0 when no
#: row has the id.
DELIVERY_READ = (
    _PRELUDE
    + """
local loaded = tonumber(redis.call('HGET', META, 'loaded') or '0')
local reply = {}
for i = 1, #ARGV, 2 do
  local seq = tonumber(redis.call('HGET', IDS, ARGV[i]) or ARGV[i + 1])
  if seq < 1 or seq > loaded then
    seq = 0
  end
  local state, record, dv = '', '', ''
  if seq > 0 then
    state = redis.call('GETRANGE', S, seq - 1, seq - 1)
    record = redis.call('GETRANGE', DLV, (seq - 1) * DREC, seq * DREC - 1)
    dv = redis.call('HGET', DLVSTATE, seq) or ''
  end
  reply[#reply + 1] = seq
  reply[#reply + 1] = state
  reply[#reply + 1] = record
  reply[#reply + 1] = dv
end
return reply
"""
)

#: ``delivery_write((seq, old_record, old_dv, new_record, new_dv)*)``: store the states the
#: client folded with the delivery rule, if nothing changed since it read them (a check and
#: set: another process recording reports for the same message makes it read and fold
#: again). A row left unknown is accepted, confirmed by the report. Replies 1, or 0 when
#: a row changed meanwhile (nothing is written).
DELIVERY_WRITE = (
    _PRELUDE
    + """
for i = 1, #ARGV, 5 do
  local seq = tonumber(ARGV[i])
  local record = redis.call('GETRANGE', DLV, (seq - 1) * DREC, seq * DREC - 1)
  local dv = redis.call('HGET', DLVSTATE, seq) or ''
  if record ~= ARGV[i + 1] or dv ~= ARGV[i + 2] then
    return 0
  end
end
for i = 1, #ARGV, 5 do
  local seq, old, new, dv = tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 3], ARGV[i + 4]
  if new ~= old then
    redis.call('SETRANGE', DLV, (seq - 1) * DREC, new)
    local before, after = string.sub(old, 1, 1), string.sub(new, 1, 1)
    if before ~= after then
      if string.match(before, '%d') then redis.call('HINCRBY', STATS, 'd' .. before, -1) end
      redis.call('HINCRBY', STATS, 'd' .. after, 1)
    end
  end
  if dv == '' then
    redis.call('HDEL', DLVSTATE, seq)
  elseif dv ~= ARGV[i + 2] then
    redis.call('HSET', DLVSTATE, seq, dv)
  end
  if redis.call('GETRANGE', S, seq - 1, seq - 1) == 'U' then
    confirm(seq)
  end
end
return 1
"""
)

#: ``read_rows(first, last)``: rows ``first..last`` for export. Replies ``{states,
#: records, first_chunk, nchunks, chunk_json*, (seq, reason)*}``: the state bytes, the
#: delivery records, each chunk's export record (``''`` when it has none), and the reasons
#: of failed and unknown rows.
READ_ROWS = (
    _PRELUDE
    + """
local first, last = tonumber(ARGV[1]), tonumber(ARGV[2])
local c = chunk_size()
local bytes = redis.call('GETRANGE', S, first - 1, last - 1)
local records = redis.call('GETRANGE', DLV, (first - 1) * DREC, last * DREC - 1)
local n1, n2 = math.floor((first - 1) / c) + 1, math.floor((last - 1) / c) + 1
local reply = {bytes, records, n1, n2 - n1 + 1}
for n = n1, n2 do
  reply[#reply + 1] = redis.call('HGET', ROWS, n) or ''
end
for i = 1, #bytes do
  local b = string.sub(bytes, i, i)
  if b == 'F' or b == 'U' then
    reply[#reply + 1] = first + i - 1
    reply[#reply + 1] = redis.call('HGET', FAIL, first + i - 1) or ''
  end
end
return reply
"""
)

#: ``read_confirmed()``: the rows a delivery report confirmed (a few: bounded by the rows
#: left unknown).
READ_CONFIRMED = _PRELUDE + "return redis.call('HKEYS', CONF)"

#: ``resend(worker, lease_ms, silent_ms, resend)``: start a session (``recover``).
#:
#: 1. A reopened chunk whose lease ran out (its session died): rows in flight become
#:    unknown; rows still pending are handed to this session.
#: 2. An unknown row with a delivery report on record is accepted, confirmed by it.
#: 3. With ``resend`` = 1, unknown rows whose reason keeps their body and which became
#:    unknown at least ``silent_ms`` ago (any, when negative) are pending again; not those
#:    of a chunk set aside (they were in flight while it killed workers).
#: 4. Rows pending again in a chunk still on the stream are sent by its next owner; the
#:    others' chunks are reopened for this session: a fresh token, a lease in ``:redo``.
#:
#: Replies ``{became_unknown, requeued, confirmed, still_unknown, (n, token, k,
#: (seq, id, destination, body)*k)*}``.
RESEND = (
    _PRELUDE
    + """
local worker, lease, silent = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local resend = ARGV[4] == '1'
local c = chunk_size()
local now = now_ms()
local out, order = {}, {}
local function hand(seq)
  local n = math.floor((seq - 1) / c) + 1
  if not out[n] then
    out[n] = {}
    order[#order + 1] = n
  end
  out[n][#out[n] + 1] = seq
end
local became, requeued, confirmed, still = 0, 0, 0, 0
local redo = redis.call('HGETALL', REDO)
for i = 1, #redo, 2 do
  local n = tonumber(redo[i])
  local token, expires = string.match(redo[i + 1], '^(.*) (%d+)$')
  if tonumber(expires) < now then
    redis.call('HDEL', REDO, n)
    if redis.call('HGET', TOK, n) == token then
      redis.call('HDEL', TOK, n)
    end
    local first, bytes = chunk_range(n, c)
    for j = 1, #bytes do
      local b, seq = string.sub(bytes, j, j), first + j
      local kept = redis.call('HGET', FAIL, seq)
      if b == 'I' and kept then
        local r = cjson.decode(kept)
        r.k, r.m, r.c, r.t = 'crash', nil, nil, now
        redis.call('HSET', FAIL, seq, cjson.encode(r))
        redis.call('SETRANGE', S, seq - 1, 'U')
        redis.call('HINCRBY', STATS, 'I', -1)
        redis.call('HINCRBY', STATS, 'U', 1)
        became = became + 1
      elseif b == 'P' and kept then
        hand(seq)
      end
    end
  end
end
local bytes = redis.call('GET', S) or ''
local seq = string.find(bytes, 'U', 1, true)
while seq do
  local r = nil
  if not reported(seq) and resend then
    r = cjson.decode(redis.call('HGET', FAIL, seq) or '{}')
  end
  local held = redis.call('HEXISTS', META, 'held:' .. (math.floor((seq - 1) / c) + 1)) == 1
  if reported(seq) then
    confirm(seq)
    confirmed = confirmed + 1
  elseif r and r.b and not held and (silent < 0 or (r.t or now) <= now - silent) then
    redis.call('SETRANGE', S, seq - 1, 'P')
    redis.call('HINCRBY', STATS, 'U', -1)
    redis.call('HINCRBY', STATS, 'P', 1)
    requeued = requeued + 1
    hand(seq)
  elseif resend then
    still = still + 1
  end
  seq = string.find(bytes, 'U', seq + 1, true)
end
local reply = {became, requeued, confirmed, still}
for _, n in ipairs(order) do
  local id = entry_id(n)
  if #redis.call('XRANGE', Q, id, id) == 0 then
    local token = worker .. ':' .. redis.call('HINCRBY', STATS, 'tokens', 1)
    redis.call('HSET', TOK, n, token)
    redis.call('HSET', REDO, n, token .. ' ' .. (now + lease))
    reply[#reply + 1] = n
    reply[#reply + 1] = token
    reply[#reply + 1] = #out[n]
    for _, s in ipairs(out[n]) do
      local r = cjson.decode(redis.call('HGET', FAIL, s))
      reply[#reply + 1] = s
      reply[#reply + 1] = r.i
      reply[#reply + 1] = r.d
      reply[#reply + 1] = r.b
    end
  end
end
return reply
"""
)

#: ``renew(lease_ms, (n, token)*)``: extend the lease of the reopened chunks this session
#: still owns (the heartbeat of ``resend_unknown``).
RENEW = (
    _PRELUDE
    + """
local expires = now_ms() + tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  local n, token = ARGV[i], ARGV[i + 1]
  local held = redis.call('HGET', REDO, n)
  if held and string.sub(held, 1, #token + 1) == token .. ' ' then
    redis.call('HSET', REDO, n, token .. ' ' .. expires)
  end
end
return 0
"""
)
