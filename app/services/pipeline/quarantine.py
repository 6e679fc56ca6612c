"""The camera watcher as operators see it in `/api/system/health` (an installation-wide route,
refused to tenant-scoped credentials: the entries name files and folders on the host):

- its state, kept in Redis by the process that holds the watcher lock: `running`,
  `restarting` (its event source failed; it rescans and restarts after a bounded backoff) or
  `stopped` (no process watches: none started with --watch, or the holder died and no standby
  took over yet); how often it restarted, and the last error;
- the files it gave up on: at most QUARANTINE_MAX entries, newest reasons kept until an
  operator clears the key."""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

QUARANTINE_KEY = "opsgraph:watcher:quarantine"
QUARANTINE_MAX = 1000
SHOWN = 20
# hash: state, since, restarts, last_error, last_error_at (written by the watcher)
STATE_KEY = "opsgraph:watcher:state"
# the watching process's name; expires unless the process renews it (with its lock), so a
# process that died without a word reads as `stopped` rather than `running` for ever
ALIVE_KEY = "opsgraph:watcher:alive"


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


async def quarantined(redis: Redis) -> dict[str, Any]:
    """How many files are quarantined and (some of) which, with their reasons."""
    count = int(await redis.hlen(QUARANTINE_KEY))  # type: ignore[misc]
    files: list[dict[str, Any]] = []
    async for name, value in redis.hscan_iter(QUARANTINE_KEY, count=SHOWN):
        entry = json.loads(value)
        files.append({"file": _text(name), **entry})
        if len(files) >= SHOWN:
            break
    return {"quarantined": count, "files": files}


async def watcher_health(redis: Redis) -> dict[str, Any]:
    """The watcher's state, restart count and last error, then its quarantine."""
    raw = await redis.hgetall(STATE_KEY)  # type: ignore[misc]
    found = {_text(k): _text(v) for k, v in raw.items()}
    alive = await redis.get(ALIVE_KEY)
    return {
        "state": found.get("state") if alive is not None else "stopped",
        "worker": _text(alive),
        "since": found.get("since") if alive is not None else None,
        "restarts": int(found.get("restarts") or 0),
        "last_error": found.get("last_error"),
        "last_error_at": found.get("last_error_at"),
        **await quarantined(redis),
    }


async def watcher_report(redis: Redis) -> dict[str, Any]:
    """`watcher_health` for both doors' system health: with Redis down, every figure is
    unknown (None), since the health answer names Redis as the failure already."""
    try:
        return await watcher_health(redis)
    except (RedisError, OSError):
        return {
            "state": None,
            "worker": None,
            "since": None,
            "restarts": None,
            "last_error": None,
            "last_error_at": None,
            "quarantined": None,
            "files": [],
        }
