"""Lua scripts of ``RedisCoordinator``: the reply marks, queues and liveness as atomic
steps. Every key arrives in ``KEYS``; ``KEYS[1]`` is always the liveness set."""

from __future__ import annotations

_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function live(p)
  local s = redis.call('ZSCORE', KEYS[1], p)
  return s and tonumber(s) > now
end
local function owner(v) return string.match(v, '^([^|]*)') end
local function user(v) return string.match(v, '|(.*)$') end
"""

#: KEYS procs, active, queue, uactive; ARGV proc, user, conv, item, max queued
CLAIM = (
    _PRELUDE
    + """
local v = redis.call('GET', KEYS[2])
local item = ARGV[4]
if v then
  if live(owner(v)) then
    if redis.call('LLEN', KEYS[3]) >= tonumber(ARGV[5]) then return {'full', ''} end
    redis.call('RPUSH', KEYS[3], item)
    return {'queued', ''}
  end
  if redis.call('LLEN', KEYS[3]) > 0 then
    redis.call('RPUSH', KEYS[3], item)
    item = redis.call('LPOP', KEYS[3])
  end
end
redis.call('SET', KEYS[2], ARGV[1] .. '|' .. ARGV[2])
redis.call('HSET', KEYS[4], ARGV[3], ARGV[1])
return {'start', item}
"""
)

#: KEYS active, uactive; ARGV new owner, user, conv
HANDOVER = """
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[1])
return 1
"""

#: KEYS procs, active, queue, uactive, replies of proc; ARGV proc, conv, message id or ''
RELEASE = (
    _PRELUDE
    + """
if ARGV[3] ~= '' then redis.call('HDEL', KEYS[5], ARGV[3]) end
local v = redis.call('GET', KEYS[2])
if not v then return false end
local o = owner(v)
if o ~= ARGV[1] and live(o) then return false end
local nxt = redis.call('LPOP', KEYS[3])
if nxt then
  redis.call('SET', KEYS[2], ARGV[1] .. '|' .. user(v))
  redis.call('HSET', KEYS[4], ARGV[2], ARGV[1])
  return nxt
end
redis.call('DEL', KEYS[2])
redis.call('HDEL', KEYS[4], ARGV[2])
return false
"""
)

#: KEYS procs; ARGV proc, ttl ms -> {the live processes, the dead ones}
BEAT = (
    _PRELUDE
    + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local alive = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
return {alive, dead}
"""
)

#: KEYS procs, agents, replies of the dead proc; ARGV dead proc: the first caller takes
#: its replies and agents
CLAIM_DEAD = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return false end
local replies = redis.call('HVALS', KEYS[3])
redis.call('DEL', KEYS[3])
local agents = {}
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all, 2 do
  if all[i + 1] == ARGV[1] then
    redis.call('HDEL', KEYS[2], all[i])
    table.insert(agents, all[i])
  end
end
return {replies, agents}
"""

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

#: KEYS presence; ARGV field, step, ttl s: count the user's sockets of one process
COUNT = """
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return n
"""
