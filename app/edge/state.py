"""The long-lived clients an API process shares, built by the lifespan and handed to requests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

from arq.connections import ArqRedis, RedisSettings, create_pool
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.auth.credentials import Authenticator
from app.config import Settings
from app.db.base import make_engine, make_sessionmaker
from app.edge import domains
from app.edge.submissions import Submissions
from app.platform.events import Broker
from app.services.fleet.breakers import Breakers
from app.services.fleet.health import Health, HealthCache, system_health
from app.services.tasks import registry
from app.services.tasks.catalog import CATALOG


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    # single-statement reads outside transactions (app/edge/uow.read): lists' pages and counts
    reads: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: ArqRedis
    broker: Broker
    auth: Authenticator
    # top-level task submissions, group-committed
    submissions: Submissions
    # system health, probed at most once per OPSGRAPH_HEALTH_CACHE_SECONDS
    health: HealthCache


async def _follow_registrations(broker: Broker) -> None:
    """A worker's registration of its task types makes this process read the registry again
    on the next submission, instead of up to a few seconds later."""
    async with broker.subscribe(lambda e: e.kind == registry.TYPES_KIND, buffer=4) as sub:
        async for _ in sub:
            CATALOG.invalidate()


@asynccontextmanager
async def open_state(settings: Settings, *, listen: bool = True) -> AsyncIterator[AppState]:
    """Open the clients; `listen` starts the process's event listener (subscriptions)."""
    domains.install()  # the reactions its units of work run
    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
    reads = make_engine(
        settings.database_url,
        pool_size=max(2, settings.db_pool_size // 2),
        pre_ping=False,
        autocommit=True,
    )
    sessionmaker = make_sessionmaker(engine, settings.session_info())
    redis: ArqRedis = await create_pool(RedisSettings.from_dsn(settings.redis_url))
    broker = Broker(redis, buffer=settings.subscriber_buffer)

    async def probe() -> Health:
        return await system_health(
            engine=engine,
            redis=redis,
            breakers=Breakers(redis, settings.breakers),
            services=settings.model_services(),
        )

    following: asyncio.Task[None] | None = None
    if listen:
        await broker.start()
        following = asyncio.create_task(_follow_registrations(broker), name="task-types")
    try:
        yield AppState(
            settings=settings,
            engine=engine,
            reads=reads,
            sessionmaker=sessionmaker,
            redis=redis,
            broker=broker,
            auth=Authenticator(settings, sessionmaker),
            submissions=Submissions(
                sessionmaker, redis, max_queued_per_tenant=settings.max_queued_per_tenant
            ),
            health=HealthCache(settings.health_cache_seconds, probe),
        )
    finally:
        if following is not None:
            following.cancel()
            with suppress(asyncio.CancelledError):
                await following
        await broker.stop()
        await redis.aclose()
        await reads.dispose()
        await engine.dispose()
