"""Cron expressions in a time zone (cronsim, zoneinfo): checks and the ticks they give.

Daylight saving, as cronsim computes it: a wall-clock time the spring-forward night skips
(02:30 in Europe/Berlin on the last Sunday of March) fires once, at the first time after the
gap (03:00 CEST); one the fall-back night repeats fires once, at its first occurrence (02:30
CEST, not again at 02:30 CET)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from itertools import islice, pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from app.kernel.errors import InvalidInput

# fire times looked at to find the shortest interval of an expression (a year of minutes is
# more than enough to meet every pattern's closest pair)
INTERVAL_SAMPLES = 1000


class Overlap(StrEnum):
    """What a fire does while the previous run is unfinished."""

    SKIP = "SKIP"  # records the fire as skipped
    ALLOW = "ALLOW"  # starts another run
    CANCEL_PREVIOUS = "CANCEL_PREVIOUS"  # cancels the previous run, then starts


class CatchUp(StrEnum):
    """What a schedule does about ticks missed while no worker ran (after downtime)."""

    NONE = "NONE"  # nothing: missed ticks are recorded as missed
    LATEST = "LATEST"  # one run for the missed ticks (at the latest of them)
    ALL = "ALL"  # a run for every missed tick (at most MAX_CATCH_UP, oldest first)


MAX_CATCH_UP = 100


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name!r}", field="timezone") from None


def ticks(expr: str, tz: ZoneInfo, after: datetime) -> Iterator[datetime]:
    """The expression's ticks strictly after `after`, in UTC."""
    for tick in CronSim(expr, after.astimezone(tz)):
        yield tick.astimezone(UTC)


def check(expr: str, tz: ZoneInfo, now: datetime, min_seconds: float) -> None:
    """Refuse an expression cronsim refuses, one that never fires, or one firing more often
    than every `min_seconds`, naming the field `cron`."""
    try:
        upcoming = list(islice(ticks(expr, tz, now), INTERVAL_SAMPLES))
    except (CronSimError, ValueError) as exc:
        raise InvalidInput(f"invalid cron expression {expr!r}: {exc}", field="cron") from None
    if not upcoming:
        raise InvalidInput(f"cron expression {expr!r} never fires", field="cron")
    shortest = min(
        ((b - a).total_seconds() for a, b in pairwise(upcoming)),
        default=None,
    )
    if shortest is not None and shortest < min_seconds:
        raise InvalidInput(
            f"cron expression {expr!r} fires every {shortest:g} s; the least is {min_seconds:g} s"
            " (OPSGRAPH_MIN_SCHEDULE_SECONDS)",
            field="cron",
        )


def next_after(expr: str, tz: ZoneInfo, after: datetime, n: int = 1) -> list[datetime]:
    return list(islice(ticks(expr, tz, after), n))
