"""Pipeline mutations: flush a batch, reprocess an enrichment, requeue or clear a DLQ, reset a
circuit breaker. Expected failures are data (`errors`), as for tasks."""

from __future__ import annotations

import strawberry

from app.gql.context import Info
from app.gql.permissions import CanOperatePlatform
from app.gql.pipeline.queries import breakers_of, configured_breakers, dlq_queue
from app.gql.pipeline.types import Batch, CircuitBreaker, PipelineError, PipelineErrorCode
from app.services import dlq
from app.services.errors import DomainError, NotFound
from app.services.pipeline import batches, stages
from app.uow import unit_of_work


def _error(exc: DomainError) -> list[PipelineError]:
    code = PipelineErrorCode.NOT_FOUND if isinstance(exc, NotFound) else PipelineErrorCode.INVALID
    return [PipelineError(field=exc.field, code=code, message=exc.message)]


@strawberry.type
class BatchPayload:
    batch: Batch | None
    errors: list[PipelineError]


@strawberry.type
class ReprocessPayload:
    detection_id: int | None
    status: str | None = strawberry.field(description="queued")
    errors: list[PipelineError]


@strawberry.type
class RequeuePayload:
    requeued_count: int
    remaining_count: int
    task_ids: list[strawberry.ID]
    errors: list[PipelineError]


@strawberry.type
class ClearDlqPayload:
    cleared_count: int
    errors: list[PipelineError]


@strawberry.type
class BreakerPayload:
    circuit_breaker: CircuitBreaker | None
    errors: list[PipelineError]


async def _requeue(info: Info, queue: str, limit: int) -> RequeuePayload:
    ctx = info.context
    try:
        async with unit_of_work(ctx.state.sessionmaker, ctx.state.redis) as session:
            name = await dlq_queue(info, session, queue)
            done, remaining = await dlq.requeue(session=session, queue=name, limit=limit)
    except DomainError as exc:
        return RequeuePayload(requeued_count=0, remaining_count=0, task_ids=[], errors=_error(exc))
    return RequeuePayload(
        requeued_count=len(done),
        remaining_count=remaining,
        task_ids=[strawberry.ID(str(t.id)) for t in done],
        errors=[],
    )


@strawberry.type
class PipelineMutations:
    @strawberry.mutation(
        permission_classes=[CanOperatePlatform], description="Close a batch now and analyse it."
    )
    async def flush_batch(self, info: Info, batch_id: str) -> BatchPayload:
        ctx = info.context
        try:
            async with unit_of_work(ctx.state.sessionmaker, ctx.state.redis) as session:
                row = await batches.flush(session=session, batch_id=batch_id)
        except DomainError as exc:
            return BatchPayload(batch=None, errors=_error(exc))
        return BatchPayload(batch=Batch(row=row), errors=[])

    @strawberry.mutation(permission_classes=[CanOperatePlatform])
    async def reprocess_enrichment(self, info: Info, detection_id: int) -> ReprocessPayload:
        ctx = info.context
        try:
            async with unit_of_work(ctx.state.sessionmaker, ctx.state.redis) as session:
                await stages.reprocess(session=session, detection_id=detection_id)
        except DomainError as exc:
            return ReprocessPayload(detection_id=None, status=None, errors=_error(exc))
        return ReprocessPayload(detection_id=detection_id, status="queued", errors=[])

    @strawberry.mutation(
        permission_classes=[CanOperatePlatform], description="Requeue the oldest dead letter."
    )
    async def requeue_dlq_job(self, info: Info, queue: str) -> RequeuePayload:
        return await _requeue(info, queue, 1)

    @strawberry.mutation(
        permission_classes=[CanOperatePlatform],
        description=f"Requeue dead letters, oldest first, at most {dlq.REQUEUE_ALL_MAX} per call.",
    )
    async def requeue_all_dlq_jobs(self, info: Info, queue: str) -> RequeuePayload:
        return await _requeue(info, queue, dlq.REQUEUE_ALL_MAX)

    @strawberry.mutation(
        permission_classes=[CanOperatePlatform],
        description="Take every task out of a DLQ (they stay FAILED in history).",
    )
    async def clear_dlq(self, info: Info, queue: str) -> ClearDlqPayload:
        ctx = info.context
        try:
            async with unit_of_work(ctx.state.sessionmaker, ctx.state.redis) as session:
                name = await dlq_queue(info, session, queue)
                cleared = await dlq.clear(session=session, queue=name)
        except DomainError as exc:
            return ClearDlqPayload(cleared_count=0, errors=_error(exc))
        return ClearDlqPayload(cleared_count=cleared, errors=[])

    @strawberry.mutation(permission_classes=[CanOperatePlatform])
    async def reset_circuit_breaker(self, info: Info, name: str) -> BreakerPayload:
        breakers = breakers_of(info)
        known = {b.name for b in await breakers.states(configured_breakers(info))}
        if name not in known:
            return BreakerPayload(
                circuit_breaker=None,
                errors=_error(NotFound(f"unknown circuit breaker {name!r}", field="name")),
            )
        await breakers.reset(name)
        (state,) = [b for b in await breakers.states([name]) if b.name == name]
        return BreakerPayload(circuit_breaker=CircuitBreaker.of(state), errors=[])
