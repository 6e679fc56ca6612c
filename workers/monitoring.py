"""The alert evaluator's cron: every OPSGRAPH_ALERT_EVAL_INTERVAL_SECONDS one worker (whichever
takes the tick in Redis first) runs a pass; PostgreSQL's advisory lock keeps passes from
overlapping even when Redis is away and every worker tries."""

from __future__ import annotations

import asyncio
import logging

from redis.exceptions import RedisError

from app.edge.uow import unit_of_work
from app.services.monitoring import evaluator
from workers.context import WorkerState

log = logging.getLogger(__name__)
TICK_KEY = "opsgraph:alerts:tick"


async def _my_tick(state: WorkerState, interval: float) -> bool:
    try:
        # a little shorter than the interval, so a slow loop does not skip a tick
        took = await state.redis.set(TICK_KEY, state.name, nx=True, px=int(interval * 900))
        return bool(took)
    except (RedisError, OSError):
        return True


async def evaluate_once(state: WorkerState) -> evaluator.Outcome:
    async with unit_of_work(state.sessionmaker, state.redis) as session:
        return await evaluator.evaluate(session)


async def evaluate_forever(state: WorkerState) -> None:
    interval = state.settings.alert_eval_interval_seconds
    while True:
        try:
            if await _my_tick(state, interval):
                outcome = await evaluate_once(state)
                if outcome.fired or outcome.resolved:
                    log.info(
                        "alerts: %d fired, %d resolved, %d pending",
                        len(outcome.fired),
                        len(outcome.resolved),
                        outcome.pending,
                    )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a store outage: the next tick tries again
            log.warning("alert evaluation failed: %s", exc)
        await asyncio.sleep(interval)
