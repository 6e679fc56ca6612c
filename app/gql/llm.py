"""The LLM queue in GraphQL: stats (typed), active tasks, bulk cancel, clearing stats and the
semaphore, and a coalesced live stats subscription."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import cast

import strawberry
from strawberry.scalars import JSON

from app.gql.context import Info
from app.gql.errors import CaptureErrors
from app.gql.forward import forward
from app.gql.permissions import CanAdmin, CanOperate, CanRead
from app.gql.throttle import throttled_snapshots
from app.gql.types import Task, TaskError
from app.kernel.bounds import CLEAR_STATS_HOURS_MAX
from app.kernel.errors import InvalidInput
from app.services.fleet import stats
from app.services.llm import queue as llm_queue
from app.services.llm import semaphore


@strawberry.type
class LlmQueueStats:
    queue: str
    queued: int
    running: int
    workers: int
    max_depth: int
    depth_percent: float
    total_input_tokens: int
    total_output_tokens: int
    total_cost_usd: float
    mean_duration_seconds: float | None
    estimated_seconds: int
    estimated_human: str


@strawberry.type
class UsageTotal:
    key: str
    tasks: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


@strawberry.type
class SemaphoreStats:
    max_concurrent: int
    reserved_high_priority: int
    active_count: int
    active_high_priority: int
    active_low_priority: int
    waiting_high_priority: int
    waiting_low_priority: int
    total_high_priority: int
    total_low_priority: int
    avg_wait_time_high: float = strawberry.field(description="Seconds.")
    avg_wait_time_low: float = strawberry.field(description="Seconds.")


@strawberry.type
class LlmStats:
    queues: list[LlmQueueStats]
    total_queued: int
    total_cost_usd: float
    total_input_tokens: int
    total_output_tokens: int
    total_tokens: int
    estimated_completion_time_seconds: int
    estimated_completion_time_human: str
    semaphore_stats: SemaphoreStats
    by_model: list[UsageTotal]
    by_tenant: list[UsageTotal]
    totals_since: datetime | None = strawberry.field(
        description="When the totals were last cleared (null: never)."
    )


def _usage(rows: list[llm_queue.Usage]) -> list[UsageTotal]:
    return [UsageTotal(**vars(u)) for u in rows]


async def load_llm_stats(info: Info) -> LlmStats:
    state = info.context.state
    async with info.context.reading() as session:
        s = await llm_queue.llm_stats(
            session=session,
            redis=state.redis,
            config=state.settings.semaphore,
            queues=state.settings.llm_queues,
            max_depth=state.settings.llm_queue_max_depth,
            tenant_id=info.context.tenant_id,
        )
    queues = [
        forward(LlmQueueStats, q, estimated_human=llm_queue.human_duration(q.estimated_seconds))
        for q in s.queues
    ]
    return forward(
        LlmStats,
        s,
        queues=queues,
        semaphore_stats=forward(SemaphoreStats, s.semaphore),
        by_model=_usage(s.by_model),
        by_tenant=_usage(s.by_tenant),
        totals_since=s.reset_at,
    )


@strawberry.type
class ServerMetrics:
    """Seed 003's server metrics (REST's GET /api/v1/metrics)."""

    server_status: str
    llm_status: JSON = strawberry.field(description="Model name → online.")
    tokens_per_second: float | None
    average_response_time: float | None = strawberry.field(description="Seconds.")
    total_requests: int
    active_tasks: int
    queue_length: int
    success_rate: float | None
    api_costs: float


@strawberry.type
class LlmQueries:
    @strawberry.field(
        permission_classes=[CanRead], description="Seed 003's metrics (a tenant: its own tasks)."
    )
    async def server_metrics(self, info: Info) -> ServerMetrics:
        settings = info.context.state.settings
        async with info.context.reading() as session:
            m = await stats.server_metrics(session=session, tenant_id=info.context.tenant_id)
        model = stats.chat_model(settings.llm_provider_name, settings.llm_chat_model)
        return forward(
            ServerMetrics, m, server_status="online", llm_status=cast(JSON, {model: "online"})
        )

    @strawberry.field(permission_classes=[CanRead])
    async def llm_stats(self, info: Info) -> LlmStats:
        return await load_llm_stats(info)

    @strawberry.field(permission_classes=[CanRead], description="Queued and running LLM tasks.")
    async def llm_tasks(self, info: Info, first: int = 100) -> list[Task]:
        first = max(1, min(first, info.context.state.settings.page_size_max))
        async with info.context.reading() as session:
            rows = await llm_queue.active_llm_tasks(
                session=session, tenant_id=info.context.tenant_id, limit=first
            )
        return [Task.of(r) for r in rows]


@strawberry.type
class CancelAllPayload:
    cancelled: int
    message: str


@strawberry.input
class ClearLlmStatsInput:
    older_than_hours: int = strawberry.field(
        default=24,
        description=f"Delete finished LLM tasks older than this (0-{CLEAR_STATS_HOURS_MAX}).",
    )


@strawberry.type
class ClearLlmStatsPayload:
    deleted_tasks: int
    errors: list[TaskError]


@strawberry.type
class ClearSemaphorePayload:
    high_priority_cleared: int
    low_priority_cleared: int
    total_cleared: int


@strawberry.type
class LlmMutations:
    @strawberry.mutation(
        permission_classes=[CanOperate],
        description="Cancel queued LLM tasks and ask running ones to stop.",
    )
    async def cancel_all_llm_tasks(self, info: Info) -> CancelAllPayload:
        ctx = info.context
        count = await llm_queue.cancel_all_llm_tasks(units=ctx.writing, tenant_id=ctx.tenant_id)
        return CancelAllPayload(
            cancelled=count, message="Task cancellation requested for LLM queue"
        )

    @strawberry.mutation(
        permission_classes=[CanAdmin],
        description="Reset the totals and delete finished LLM tasks older than the cut-off.",
        extensions=[CaptureErrors()],
    )
    async def clear_llm_stats(self, info: Info, input: ClearLlmStatsInput) -> ClearLlmStatsPayload:
        if not 0 <= input.older_than_hours <= CLEAR_STATS_HOURS_MAX:
            raise InvalidInput(
                f"olderThanHours must be between 0 and {CLEAR_STATS_HOURS_MAX}",
                field="olderThanHours",
            )
        ctx = info.context
        async with ctx.writing() as session:
            deleted = await llm_queue.clear_stats(
                session=session, redis=ctx.state.redis, older_than_hours=input.older_than_hours
            )
        return ClearLlmStatsPayload(deleted_tasks=deleted, errors=[])

    @strawberry.mutation(
        permission_classes=[CanAdmin],
        description="Drop semaphore waiters that no live worker polls for (orphans).",
    )
    async def clear_llm_semaphore(self, info: Info) -> ClearSemaphorePayload:
        high, low = await semaphore.clear_orphans(info.context.state.redis)
        return ClearSemaphorePayload(
            high_priority_cleared=high, low_priority_cleared=low, total_cleared=high + low
        )


@strawberry.type
class LlmSubscription:
    @strawberry.subscription(
        permission_classes=[CanRead],
        description="LLM queue stats now, then when LLM tasks change (at most two per second).",
    )
    async def llm_stats(self, info: Info) -> AsyncGenerator[LlmStats, None]:
        async for snapshot in throttled_snapshots(
            info, lambda e: e.data.get("task_type") == "llm", load_llm_stats
        ):
            yield snapshot
