"""GET /metrics: Prometheus exposition of the fleet's state (from PostgreSQL and Redis, shared
by every replica) and of this API process (subscriptions, event fan-out). Needs a reader
credential, like every other non-health endpoint (an API key suits a scraper)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.auth import Forbidden, Permission, Unauthenticated
from app.db.models import Task
from app.services import semaphore, stats
from app.state import AppState
from app.uow import read_only


async def metrics(request: Request) -> Response:
    state: AppState = request.scope["state"]["app"]
    try:
        principal = await state.auth.authenticate(
            authorization=request.headers.get("authorization"),
            api_key=request.headers.get("x-api-key"),
        )
        principal.require(Permission.READ)
    except Unauthenticated as exc:
        return JSONResponse({"detail": str(exc)}, status_code=401)
    except Forbidden as exc:
        return JSONResponse({"detail": str(exc)}, status_code=403)

    registry = CollectorRegistry()
    tasks_g = Gauge(
        "opsgraph_tasks", "Tasks by status and queue", ["status", "queue"], registry=registry
    )
    tokens_g = Gauge("opsgraph_llm_tokens", "Tokens recorded on tasks", ["kind"], registry=registry)
    cost_g = Gauge("opsgraph_llm_cost_usd", "Cost recorded on tasks (USD)", registry=registry)
    async with read_only(state.sessionmaker) as session:
        rows = await session.execute(
            select(Task.status, Task.queue, func.count()).group_by(Task.status, Task.queue)
        )
        for status, queue, n in rows.all():
            tasks_g.labels(status=status, queue=queue).set(n)
        inp, out, cost = (
            await session.execute(
                select(
                    func.coalesce(func.sum(Task.input_tokens), 0),
                    func.coalesce(func.sum(Task.output_tokens), 0),
                    func.coalesce(func.sum(Task.cost_usd), 0.0),
                )
            )
        ).one()
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
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
