"""The batch timer: closes batches whose window or idle deadline has passed. Deadlines are
PostgreSQL rows, so a batch due while no worker ran closes on the first tick of any worker."""

from __future__ import annotations

import asyncio
import logging

from app.edge.uow import unit_of_work
from app.services.pipeline import batches
from workers.context import WorkerState

log = logging.getLogger(__name__)


async def close_due_forever(state: WorkerState) -> None:
    while True:
        try:
            async with unit_of_work(state.sessionmaker, state.redis) as session:
                closed = await batches.close_due(session=session)
            for b in closed:
                log.info("batch %s of %s closed (%s)", b.batch_id, b.camera_id, b.trigger)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a store outage: the deadlines wait in PostgreSQL
            log.warning("closing due batches failed: %s", exc)
        await asyncio.sleep(state.settings.batch_check_seconds)
