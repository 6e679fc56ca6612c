"""The long-lived clients an API process shares, built by the lifespan and handed to requests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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

    if listen:
        await broker.start()
    try:
        yield AppState(
            settings=settings,
            engine=engine,
            reads=reads,
            sessionmaker=sessionmaker,
            redis=redis,
            broker=broker,
            auth=Authenticator(settings, sessionmaker),
            submissions=Submissions(sessionmaker, redis),
            health=HealthCache(settings.health_cache_seconds, probe),
        )
    finally:
        await broker.stop()
        await redis.aclose()
        await reads.dispose()
        await engine.dispose()
