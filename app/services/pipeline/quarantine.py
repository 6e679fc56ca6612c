"""Camera files the watcher gave up on, kept in Redis for operators (`/api/system/health`):
at most QUARANTINE_MAX entries, newest reasons kept until an operator clears the key."""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

QUARANTINE_KEY = "opsgraph:watcher:quarantine"
QUARANTINE_MAX = 1000
SHOWN = 20


async def quarantined(redis: Redis) -> dict[str, Any]:
    """How many files are quarantined and (some of) which, with their reasons."""
    count = int(await redis.hlen(QUARANTINE_KEY))  # type: ignore[misc]
    files: list[dict[str, Any]] = []
    async for name, value in redis.hscan_iter(QUARANTINE_KEY, count=SHOWN):
        entry = json.loads(value)
        files.append({"file": name.decode() if isinstance(name, bytes) else name, **entry})
        if len(files) >= SHOWN:
            break
    return {"quarantined": count, "files": files}
