"""Lua scripts of ``RedisCoordinator``: the reply marks, queues and liveness as atomic
steps. Every key arrives in ``KEYS``; ``KEYS[1]`` is always the liveness set.

A mark (``keys.rt_active(conv)``) is ``<owner>|<user>|<token>``, set with a TTL by its owner
only (a claim, a release that starts the next reply, an accepted hand-over, an adoption)
and refreshed by the owner's beat. A script that sets a mark for a process also adds that
process's liveness entry when it has none (Redis lost it), so the mark never names a
process the others take for dead.

A client may send a script again when the connection failed after Redis ran it (the reply
was lost): every script that changes a mark gives the same answer when run again. A swap
or an adoption finds its new mark in place; a claim or a release, whose answer depends on
the queue it changed, keeps that answer under ``keys.rt_outcome`` of its new mark for a
minute.
"""

from __future__ import annotations

_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function live(p)
  local s = redis.call('ZSCORE', KEYS[1], p)
  return s and tonumber(s) > now
end
local function owner(v) return string.match(v, '^([^|]*)') end
local function mark(active, uactive, marks, conv, value, ttl, proc_ttl)
  local p = owner(value)
  redis.call('SET', active, value, 'PX', ttl)
  redis.call('HSET', uactive, conv, p)
  redis.call('PEXPIRE', uactive, ttl)
  redis.call('HSET', marks, conv, value)
  redis.call('ZADD', KEYS[1], 'NX', now + tonumber(proc_ttl), p)
end
local function unlist(marks, conv, value)
  if redis.call('HGET', marks, conv) == value then redis.call('HDEL', marks, conv) end
end
local function outcome(key, status, item)
  redis.call('SET', key, status .. item, 'PX', 60000)
  return {status, item}
end
"""

#: KEYS procs, active, queue, uactive, marks of proc, outcome of the mark; ARGV proc,
#: conv, item, max queued, mark, mark ttl ms, proc ttl ms -> {'s' (start), the item to
#: run} or {'q' (queued) | 'f' (full), ''}. The conversation is free when it has no mark
#: or its owner is dead; its queue keeps its order either way.
CLAIM = (
    _PRELUDE
    + """
local done = redis.call('GET', KEYS[6])
if done then return {string.sub(done, 1, 1), string.sub(done, 2)} end
local v = redis.call('GET', KEYS[2])
local item = ARGV[3]
if v and (owner(v) == ARGV[1] or live(owner(v))) then
  if redis.call('LLEN', KEYS[3]) >= tonumber(ARGV[4]) then return outcome(KEYS[6], 'f', '') end
  redis.call('RPUSH', KEYS[3], item)
  return outcome(KEYS[6], 'q', '')
end
if redis.call('LLEN', KEYS[3]) > 0 then
  redis.call('RPUSH', KEYS[3], item)
  item = redis.call('LPOP', KEYS[3])
end
mark(KEYS[2], KEYS[4], KEYS[5], ARGV[2], ARGV[5], ARGV[6], ARGV[7])
return outcome(KEYS[6], 's', item)
"""
)

#: KEYS procs, active, uactive, marks of the old owner, marks of the new owner; ARGV old
#: mark, new mark, conv, mark ttl ms, proc ttl ms: the mark changes hands only if it is
#: still the old one (a hand-over accepted, or taken back by the giver)
SWAP = (
    _PRELUDE
    + """
local v = redis.call('GET', KEYS[2])
if v == ARGV[2] then return 1 end
if v ~= ARGV[1] then return 0 end
unlist(KEYS[4], ARGV[3], ARGV[1])
mark(KEYS[2], KEYS[3], KEYS[5], ARGV[3], ARGV[2], ARGV[4], ARGV[5])
return 1
"""
)

#: KEYS procs, active, uactive, marks of proc; ARGV proc, conv, mark, mark ttl ms, proc
#: ttl ms: a dead process's conversation becomes proc's, unless a live process holds it
ADOPT = (
    _PRELUDE
    + """
local v = redis.call('GET', KEYS[2])
if v == ARGV[3] then return 1 end
if v and (owner(v) == ARGV[1] or live(owner(v))) then return 0 end
mark(KEYS[2], KEYS[3], KEYS[4], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return 1
"""
)

#: KEYS procs, active, queue, uactive, replies of proc, marks of proc, outcome of the
#: next reply's mark; ARGV proc, conv, message id or '', the mark released ('' for none),
#: the mark of the next reply, mark ttl ms, proc ttl ms -> the next queued reply, now
#: proc's to run, or ''
RELEASE = (
    _PRELUDE
    + """
local done = redis.call('GET', KEYS[7])
if done then return done end
if ARGV[3] ~= '' then redis.call('HDEL', KEYS[5], ARGV[3]) end
if ARGV[4] ~= '' then unlist(KEYS[6], ARGV[2], ARGV[4]) end
local v = redis.call('GET', KEYS[2])
if v and v ~= ARGV[4] and (owner(v) == ARGV[1] or live(owner(v))) then return '' end
local nxt = redis.call('LPOP', KEYS[3])
if nxt then
  mark(KEYS[2], KEYS[4], KEYS[6], ARGV[2], ARGV[5], ARGV[6], ARGV[7])
  redis.call('SET', KEYS[7], nxt, 'PX', 60000)
  return nxt
end
redis.call('DEL', KEYS[2])
redis.call('HDEL', KEYS[4], ARGV[2])
return ''
"""
)

#: KEYS procs, then n marks, then their n users' uactive; ARGV proc, ttl ms, mark ttl
#: ms, the score this process's last beat wrote, then the n marks' values -> {the live
#: processes, the dead ones, the score written, 1 when this process's entry was not the
#: one its last beat wrote (Redis lost it, or another process took this one for dead)}
BEAT = (
    _PRELUDE
    + """
local before = redis.call('ZSCORE', KEYS[1], ARGV[1])
local score = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], score, ARGV[1])
local n = (#KEYS - 1) / 2
for i = 1, n do
  if redis.call('GET', KEYS[1 + i]) == ARGV[4 + i] then
    redis.call('PEXPIRE', KEYS[1 + i], ARGV[3])
    redis.call('PEXPIRE', KEYS[1 + n + i], ARGV[3])
  end
end
local alive = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
local fresh = 1
if before and tonumber(before) == tonumber(ARGV[4]) then fresh = 0 end
return {alive, dead, score, fresh}
"""
)

#: KEYS procs, agents, replies of the dead proc, marks of the dead proc; ARGV dead proc:
#: the first caller takes its replies, agents and marks
CLAIM_DEAD = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return false end
local replies = redis.call('HVALS', KEYS[3])
local marks = redis.call('HGETALL', KEYS[4])
redis.call('DEL', KEYS[3], KEYS[4])
local agents = {}
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all, 2 do
  if all[i + 1] == ARGV[1] then
    redis.call('HDEL', KEYS[2], all[i])
    table.insert(agents, all[i])
  end
end
return {replies, agents, marks}
"""

#: KEYS procs, uactive, then the n conversations' marks; ARGV proc, then the n
#: conversations -> those whose mark names a live process; fields whose mark is gone
#: (expired, or lost with Redis's data) are dropped
ACTIVE_OF = (
    _PRELUDE
    + """
local out = {}
for i = 2, #ARGV do
  local v = redis.call('GET', KEYS[1 + i])
  if not v then
    redis.call('HDEL', KEYS[2], ARGV[i])
  elseif owner(v) == ARGV[1] or live(owner(v)) then
    table.insert(out, ARGV[i])
  end
end
return out
"""
)

#: KEYS procs, agents; ARGV agent -> its process, if live
AGENT_WHERE = (
    _PRELUDE
    + """
local p = redis.call('HGET', KEYS[2], ARGV[1])
if p and live(p) then return p end
return false
"""
)

#: KEYS agents; ARGV agent, proc
AGENT_DOWN = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0
"""

#: KEYS agents, serial; ARGV agent, proc -> the registration's number (larger than every
#: registration's before it)
AGENT_UP = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('INCR', KEYS[2])
"""

#: KEYS agents; ARGV proc, then agents: list again the agents whose socket is here,
#: unless another process registered them meanwhile
REGISTER = """
for i = 2, #ARGV do redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[1]) end
return 1
"""

#: KEYS presence; ARGV field, step, ttl s: count the user's sockets of one process
COUNT = """
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return n
"""
