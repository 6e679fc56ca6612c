"""Circuit breakers per model service, shared by every process through Redis (seed 002).

closed → open after `failure_threshold` consecutive failures → half_open once
`recovery_timeout` has passed (at most `success_threshold` test calls per timeout) → closed after
`success_threshold` successes, or open again on a failure. Each decision is one Lua script on
Redis's clock, so processes never disagree about a breaker's state. Every change of state
starts a new generation: a call's outcome counts only for the generation it was admitted under
(a call started before the breaker opened cannot close it as if it were a half-open probe).
The script that changes a state publishes it (kind `breaker`), so no change goes unannounced."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from app.platform import events

PREFIX = "opsgraph:breaker:"
KIND = "breaker"  # the event each change of state publishes (from the scripts themselves)
NAMES = PREFIX + "names"  # every breaker ever used, so lists show idle ones too


@dataclass(frozen=True)
class BreakerConfig:
    failure_threshold: int = 5
    recovery_timeout: float = 30.0
    success_threshold: int = 2


class CircuitOpen(Exception):
    """The service's breaker refuses calls for now; try again after `retry_after` seconds."""

    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__(f"circuit breaker {name!r} is open; retrying in {retry_after:.1f}s")
        self.name = name
        self.retry_after = retry_after


_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# returns {allowed (0/1), retry_after_ms, generation admitted under}
_ALLOW = (
    _NOW
    + """
local key = KEYS[1]
local recovery_ms, successes_needed = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('hget', key, 'state') or 'closed'
local gen = tonumber(redis.call('hget', key, 'gen') or '0')
if state == 'closed' then return {1, 0, gen} end
local since = tonumber(redis.call('hget', key, 'changed_at') or '0')
if state == 'open' then
  if now - since < recovery_ms then return {0, recovery_ms - (now - since), gen} end
  gen = redis.call('hincrby', key, 'gen', 1)
  redis.call('hset', key, 'state', 'half_open', 'changed_at', now, 'successes', 0, 'probes', 0)
  redis.call('publish', ARGV[3], cjson.encode({kind = 'breaker', key = ARGV[4],
    data = {name = ARGV[4], state = 'half_open', previous_state = 'open', at_ms = now}}))
  since = now
end
-- half open: a few test calls per recovery period
local probes = tonumber(redis.call('hget', key, 'probes') or '0')
if probes >= successes_needed then
  if now - since < recovery_ms then return {0, recovery_ms - (now - since), gen} end
  redis.call('hset', key, 'changed_at', now, 'probes', 0)
  probes = 0
end
redis.call('hset', key, 'probes', probes + 1)
return {1, 0, gen}
"""
)

# returns the state after recording the outcome
_RECORD = (
    _NOW
    + """
local key = KEYS[1]
local ok, error = ARGV[1] == '1', ARGV[2]
local failures_needed, successes_needed = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('sadd', KEYS[2], ARGV[5])
redis.call('hincrby', key, 'total_calls', 1)
local state = redis.call('hget', key, 'state') or 'closed'
if tonumber(redis.call('hget', key, 'gen') or '0') ~= tonumber(ARGV[6]) then
  -- admitted under an earlier state: counted, but it decides nothing now
  if not ok then redis.call('hincrby', key, 'total_failures', 1) end
  return state
end
if ok then
  if state == 'half_open' then
    local successes = redis.call('hincrby', key, 'successes', 1)
    if successes >= successes_needed then
      redis.call('hincrby', key, 'gen', 1)
      redis.call('hset', key, 'state', 'closed', 'changed_at', now, 'failure_count', 0)
      redis.call('publish', ARGV[7], cjson.encode({kind = 'breaker', key = ARGV[5],
        data = {name = ARGV[5], state = 'closed', previous_state = state, at_ms = now}}))
      return 'closed'
    end
    return state
  end
  if state == 'closed' then redis.call('hset', key, 'failure_count', 0) end
  return state
end
redis.call('hincrby', key, 'total_failures', 1)
redis.call('hset', key, 'last_failure_at', now, 'last_error', error)
local failures = redis.call('hincrby', key, 'failure_count', 1)
if state == 'half_open' or (state == 'closed' and failures >= failures_needed) then
  redis.call('hincrby', key, 'gen', 1)
  redis.call('hset', key, 'state', 'open', 'changed_at', now, 'successes', 0, 'probes', 0)
  redis.call('hincrby', key, 'times_opened', 1)
  redis.call('publish', ARGV[7], cjson.encode({kind = 'breaker', key = ARGV[5],
    data = {name = ARGV[5], state = 'open', previous_state = state, at_ms = now}}))
  return 'open'
end
return state
"""
)


@dataclass(frozen=True)
class BreakerState:
    name: str
    state: str  # closed | open | half_open
    failure_count: int
    total_calls: int
    total_failures: int
    times_opened: int
    last_error: str | None
    last_failure_at_ms: int | None
    changed_at_ms: int | None


class Breakers:
    def __init__(self, redis: Redis, config: BreakerConfig) -> None:
        self.redis = redis
        self.config = config
        self._allow = redis.register_script(_ALLOW)
        self._record = redis.register_script(_RECORD)

    async def allow(self, name: str) -> int:
        """Raise CircuitOpen when the breaker refuses a call now; else the generation the call
        is admitted under (give it back to `record`)."""
        allowed, retry_ms, generation = await self._allow(
            keys=[PREFIX + name],
            args=[
                int(self.config.recovery_timeout * 1000),
                self.config.success_threshold,
                events.channel(self.redis),
                name,
            ],
        )
        if not int(allowed):
            raise CircuitOpen(name, max(0.1, int(retry_ms) / 1000))
        return int(generation)

    async def record(self, name: str, *, ok: bool, generation: int, error: str = "") -> str:
        """Count a call's outcome; it moves the breaker only if no change of state happened
        since the call was admitted."""
        state = await self._record(
            keys=[PREFIX + name, NAMES],
            args=[
                "1" if ok else "0",
                error[:500],
                self.config.failure_threshold,
                self.config.success_threshold,
                name,
                generation,
                events.channel(self.redis),
            ],
        )
        return state.decode() if isinstance(state, bytes) else str(state)

    async def reset(self, name: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hget(PREFIX + name, "state")
            pipe.hset(
                PREFIX + name,
                mapping={"state": "closed", "failure_count": 0, "successes": 0, "probes": 0},
            )
            pipe.hincrby(PREFIX + name, "gen", 1)
            pipe.sadd(NAMES, name)
            pipe.time()
            previous, *_, (secs, micros) = await pipe.execute()
        was = previous.decode() if isinstance(previous, bytes) else (previous or "closed")
        change = {
            "name": name,
            "state": "closed",
            "previous_state": was,
            "at_ms": int(secs) * 1000 + int(micros) // 1000,
            "reset": True,
        }
        async with self.redis.pipeline(transaction=False) as pipe:
            events.publish(pipe, KIND, name, change)
            await pipe.execute()

    async def states(self, names: list[str]) -> list[BreakerState]:
        """The breakers of `names` (configured services) and of any other name ever used."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.smembers(NAMES)
            (members,) = await pipe.execute()
        known = {n.decode() if isinstance(n, bytes) else n for n in members}
        ordered = list(dict.fromkeys([*names, *sorted(known)]))
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in ordered:
                pipe.hgetall(PREFIX + name)
            pipe.time()
            *rows, (secs, micros) = await pipe.execute()
        now_ms = int(secs) * 1000 + int(micros) // 1000
        return [self._state(name, row, now_ms) for name, row in zip(ordered, rows, strict=True)]

    def _state(self, name: str, raw: dict[Any, Any], now_ms: int) -> BreakerState:
        row = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in raw.items()
        }
        state = row.get("state", "closed")
        changed = int(row["changed_at"]) if row.get("changed_at") else None
        # what the next call would find: an open breaker past its timeout lets tests through
        if (
            state == "open"
            and changed is not None
            and now_ms - changed >= self.config.recovery_timeout * 1000
        ):
            state = "half_open"
        return BreakerState(
            name=name,
            state=state,
            failure_count=int(row.get("failure_count", 0)),
            total_calls=int(row.get("total_calls", 0)),
            total_failures=int(row.get("total_failures", 0)),
            times_opened=int(row.get("times_opened", 0)),
            last_error=row.get("last_error") or None,
            last_failure_at_ms=int(row["last_failure_at"]) if row.get("last_failure_at") else None,
            changed_at_ms=changed,
        )
