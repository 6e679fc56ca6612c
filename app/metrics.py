"""GET /metrics: Prometheus exposition of the fleet's state (from PostgreSQL and Redis, shared
by every replica) and of this API process (subscriptions, event fan-out).

An operator surface: it shows every tenant's figures, so it needs an admin credential or the
dedicated scrape key (`OPSGRAPH_METRICS_KEY`, sent as a bearer token); tenant-scoped
credentials are refused. Task figures come from the maintained counters (no scan of the tasks
table); the fleet figures are computed at most once per
`OPSGRAPH_METRICS_CACHE_SECONDS` per process however often it is scraped."""

from __future__ import annotations

import asyncio
import hmac
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.auth.principals import ADMIN, Forbidden, Unauthenticated
from app.edge.state import AppState
from app.edge.uow import read_only
from app.gql import fanout
from app.services.fleet import stats
from app.services.llm import semaphore
from app.services.tasks import counters

_cache: dict[int, tuple[float, bytes]] = {}
_lock = asyncio.Lock()


async def _authorize(request: Request, state: AppState) -> None:
    authorization = request.headers.get("authorization") or ""
    scheme, _, credential = authorization.partition(" ")
    key = state.settings.metrics_key
    if key and scheme.lower() == "bearer" and hmac.compare_digest(credential.strip(), key):
        return
    principal = await state.auth.authenticate(
        authorization=request.headers.get("authorization"),
        api_key=request.headers.get("x-api-key"),
    )
    # every tenant's figures: installation-wide, admin only
    principal.require(ADMIN)


async def metrics(request: Request) -> Response:
    state: AppState = request.scope["state"]["app"]
    try:
        await _authorize(request, state)
    except Unauthenticated as exc:
        return JSONResponse({"detail": str(exc)}, status_code=401)
    except Forbidden as exc:
        return JSONResponse({"detail": str(exc)}, status_code=403)
    async with _lock:  # one computation at a time; concurrent scrapes share its result
        hit = _cache.get(id(state))
        if hit is None or time.monotonic() - hit[0] >= state.settings.metrics_cache_seconds:
            hit = (time.monotonic(), await _exposition(state))
            _cache.clear()
            _cache[id(state)] = hit
    return Response(hit[1], media_type=CONTENT_TYPE_LATEST)


async def _exposition(state: AppState) -> bytes:
    registry = CollectorRegistry()
    tasks_g = Gauge(
        "opsgraph_tasks", "Tasks by status and queue", ["status", "queue"], registry=registry
    )
    tokens_g = Gauge("opsgraph_llm_tokens", "Tokens recorded on tasks", ["kind"], registry=registry)
    cost_g = Gauge("opsgraph_llm_cost_usd", "Cost recorded on tasks (USD)", registry=registry)
    async with read_only(state.sessionmaker) as session:
        counts = await counters.task_counts(session=session)
    by_status_queue: dict[tuple[str, str], int] = {}
    for c in counts:
        key = (c.status, c.queue)
        by_status_queue[key] = by_status_queue.get(key, 0) + c.tasks
    for (status, queue), n in by_status_queue.items():
        tasks_g.labels(status=status, queue=queue).set(n)
    inp = sum(c.input_tokens for c in counts)
    out = sum(c.output_tokens for c in counts)
    cost = sum(c.cost_usd for c in counts)
    tokens_g.labels(kind="input").set(inp)
    tokens_g.labels(kind="output").set(out)
    cost_g.set(cost)

    workers = await stats.worker_overview(redis=state.redis)
    Gauge("opsgraph_workers", "Live workers", registry=registry).set(workers.total_workers)
    Gauge("opsgraph_worker_capacity", "Sum of worker concurrency", registry=registry).set(
        workers.total_capacity
    )
    Gauge("opsgraph_worker_active_tasks", "Tasks running on workers", registry=registry).set(
        workers.total_active
    )
    sem = await semaphore.stats(state.redis, state.settings.semaphore)
    sem_g = Gauge(
        "opsgraph_llm_semaphore", "LLM semaphore slots and waiters", ["state"], registry=registry
    )
    sem_g.labels(state="active").set(sem.active_count)
    sem_g.labels(state="waiting_high").set(sem.waiting_high_priority)
    sem_g.labels(state="waiting_low").set(sem.waiting_low_priority)
    sem_g.labels(state="max").set(sem.max_concurrent)

    broker = state.broker
    Gauge(
        "opsgraph_process_subscriptions",
        "Live subscriptions in this API process",
        registry=registry,
    ).set(broker.subscriber_count)
    Gauge(
        "opsgraph_process_events_received",
        "Events this process received (all time)",
        registry=registry,
    ).set(broker.events_received)
    Gauge(
        "opsgraph_process_events_coalesced",
        "Events coalesced for slow subscribers",
        registry=registry,
    ).set(broker.coalesced)
    Gauge(
        "opsgraph_process_events_dropped", "Events dropped from full buffers", registry=registry
    ).set(broker.dropped)
    delivered = Gauge(
        "opsgraph_process_subscription_results",
        "Shared subscription results delivered by this process (all time), by path",
        ["path"],
        registry=registry,
    )
    delivered.labels(path="direct").set(fanout.FIGURES.direct)
    delivered.labels(path="queued").set(fanout.FIGURES.queued)
    return bytes(generate_latest(registry))
