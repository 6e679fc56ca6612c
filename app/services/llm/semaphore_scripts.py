"""The LLM priority semaphore's Lua scripts (semaphore.py runs them): each decision of the
semaphore (admit or queue, release, renew, drop orphaned waiters) is one script, atomic across
processes, on Redis's clock.

The caller passes the keys (KEYS) and the settings (ARGV); a waiter's wake list is named
from the prefix it passes (ARGV), so the scripts need one Redis, not a cluster."""

from __future__ import annotations

# Shared by the scripts: the time in milliseconds, by Redis's clock.
NOW = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# Shared by the scripts: tell the waiter who can be admitted now that it may try, so waiters
# block on their own wake list instead of polling.
WAKE_NEXT = """
local function wake_next(holders, wait_high, wait_low, max_concurrent, reserved, wake_prefix)
  local active = redis.call('zcard', holders)
  local head = nil
  if redis.call('zcard', wait_high) > 0 then
    if active < max_concurrent then head = redis.call('zrange', wait_high, 0, 0)[1] end
  elseif active < max_concurrent - reserved then
    head = redis.call('zrange', wait_low, 0, 0)[1]
  end
  if head then
    redis.call('rpush', wake_prefix .. head, 1)
    redis.call('pexpire', wake_prefix .. head, 5000)
  end
end
"""

# Admits (or puts in line) each waiter of ARGV[6..] (waiter, class pairs) in order, as if each
# had called alone at the same instant: a process's waiters that ask at once share one call.
ACQUIRE = (
    NOW
    + WAKE_NEXT
    + """
local holders, classes, wait_high = KEYS[1], KEYS[2], KEYS[3]
local wait_low, alive, stats = KEYS[4], KEYS[5], KEYS[6]
local now = now_ms()
local lease_ms, alive_ms = tonumber(ARGV[1]), tonumber(ARGV[2])
local max_concurrent, reserved = tonumber(ARGV[3]), tonumber(ARGV[4])
local wake_prefix = ARGV[5]

-- expired leases give their slots back
local expired = redis.call('zrangebyscore', holders, '-inf', now)
for _, lease in ipairs(expired) do
  redis.call('zrem', holders, lease)
  redis.call('hdel', classes, lease)
end
-- waiters that stopped polling leave the line
local gone = redis.call('zrangebyscore', alive, '-inf', now)
for _, w in ipairs(gone) do
  redis.call('zrem', alive, w)
  redis.call('zrem', wait_high, w)
  redis.call('zrem', wait_low, w)
end

-- what the workers enforce is what the stats report, whatever the reader's own settings
redis.call('hset', stats, 'max_concurrent', max_concurrent, 'reserved', reserved)

local function try_admit(waiter, class)
  local queue = wait_low
  if class == 'high' then queue = wait_high end
  redis.call('zadd', queue, 'NX', now, waiter)
  redis.call('zadd', alive, now + alive_ms, waiter)

  local active = redis.call('zcard', holders)
  local first = redis.call('zrange', queue, 0, 0)[1]
  local admit = false
  if first == waiter then
    if class == 'high' then
      admit = active < max_concurrent
    else
      admit = active < (max_concurrent - reserved) and redis.call('zcard', wait_high) == 0
    end
  end
  if not admit then return -1 end

  local arrived = tonumber(redis.call('zscore', queue, waiter))
  redis.call('zrem', queue, waiter)
  redis.call('zrem', alive, waiter)
  redis.call('del', wake_prefix .. waiter)
  redis.call('zadd', holders, now + lease_ms, waiter)
  redis.call('hset', classes, waiter, class)
  redis.call('hincrby', stats, 'total_' .. class, 1)
  redis.call('hincrbyfloat', stats, 'wait_ms_' .. class, now - arrived)
  return now - arrived
end

local results, admitted = {}, false
for i = 6, #ARGV, 2 do
  results[#results + 1] = try_admit(ARGV[i], ARGV[i + 1])
  admitted = admitted or results[#results] >= 0
end
-- more than one slot may be free (or was freed by expiry): let the next in line try too
if admitted or #expired > 0 or #gone > 0 then
  wake_next(holders, wait_high, wait_low, max_concurrent, reserved, wake_prefix)
end
return results
"""
)

RELEASE = (
    WAKE_NEXT
    + """
for i = 4, #ARGV do
  local lease = ARGV[i]
  redis.call('zrem', KEYS[1], lease)
  redis.call('hdel', KEYS[2], lease)
  redis.call('zrem', KEYS[3], lease)
  redis.call('zrem', KEYS[4], lease)
  redis.call('zrem', KEYS[5], lease)
  redis.call('del', ARGV[3] .. lease)
end
wake_next(KEYS[1], KEYS[3], KEYS[4], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])
return 1
"""
)

RENEW = (
    NOW
    + """
-- an expired lease is not renewed: its slot may already be someone else's
local expiry = redis.call('zscore', KEYS[1], ARGV[1])
local now = now_ms()
if expiry and tonumber(expiry) > now then
  redis.call('zadd', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
  return 1
end
return 0
"""
)

CLEAR_ORPHANS = (
    NOW
    + """
local now = now_ms()
local cleared = {}
for i, queue in ipairs({KEYS[1], KEYS[2]}) do
  cleared[i] = 0
  for _, w in ipairs(redis.call('zrange', queue, 0, -1)) do
    local until_ms = redis.call('zscore', KEYS[3], w)
    if (not until_ms) or tonumber(until_ms) < now then
      redis.call('zrem', queue, w)
      redis.call('zrem', KEYS[3], w)
      cleared[i] = cleared[i] + 1
    end
  end
end
return cleared
"""
)
