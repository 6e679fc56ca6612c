"""Pipeline mutations: flush a batch, reprocess an enrichment, requeue or clear a DLQ, reset a
circuit breaker. Expected failures are data (`errors`), as for tasks."""

from __future__ import annotations

import uuid

import strawberry
from strawberry.scalars import JSON

from app.gql.context import Info
from app.gql.errors import CaptureErrors, json_object
from app.gql.permissions import CanOperatePlatform
from app.gql.pipeline.queries import breakers_of, configured_breakers, dlq_queue
from app.gql.pipeline.types import Batch, CircuitBreaker, PipelineError
from app.kernel.errors import NotFound
from app.services.pipeline import batches, stages
from app.services.tasks import dlq


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


async def _requeue(
    info: Info,
    queue: str,
    limit: int,
    task_id: uuid.UUID | None = None,
    input: JSON | None = None,
) -> RequeuePayload:
    async with info.context.writing() as session:
        name = await dlq_queue(info, session, queue)
        done, remaining = await dlq.requeue(
            session=session,
            queue=name,
            limit=limit,
            task_id=task_id,
            input=json_object(input, "input") if input is not None else None,
            defaults=info.context.state.settings.task_defaults,
        )
    return RequeuePayload(
        requeued_count=len(done),
        remaining_count=remaining,
        task_ids=[strawberry.ID(str(t.id)) for t in done],
        errors=[],
    )


@strawberry.type
class PipelineMutations:
    @strawberry.mutation(
        permission_classes=[CanOperatePlatform],
        description="Close a batch now and analyse it.",
        extensions=[CaptureErrors()],
    )
    async def flush_batch(self, info: Info, batch_id: str) -> BatchPayload:
        async with info.context.writing() as session:
            row = await batches.flush(session=session, batch_id=batch_id)
        return BatchPayload(batch=Batch.of(row), errors=[])

    @strawberry.mutation(permission_classes=[CanOperatePlatform], extensions=[CaptureErrors()])
    async def reprocess_enrichment(self, info: Info, detection_id: int) -> ReprocessPayload:
        async with info.context.writing() as session:
            await stages.reprocess(session=session, detection_id=detection_id)
        return ReprocessPayload(detection_id=detection_id, status="queued", errors=[])

    @strawberry.mutation(
        permission_classes=[CanOperatePlatform],
        description="Requeue the oldest dead letter, or the one `taskId` names, with `input` "
        "replacing its own when given (checked as a submission's is; the one it replaces stays "
        "in the task's log).",
        extensions=[CaptureErrors()],
    )
    async def requeue_dlq_job(
        self,
        info: Info,
        queue: str,
        task_id: uuid.UUID | None = None,
        input: JSON | None = None,
    ) -> RequeuePayload:
        return await _requeue(info, queue, 1, task_id, input)

    @strawberry.mutation(
        permission_classes=[CanOperatePlatform],
        description=f"Requeue dead letters, oldest first, at most {dlq.REQUEUE_ALL_MAX} per call.",
        extensions=[CaptureErrors()],
    )
    async def requeue_all_dlq_jobs(self, info: Info, queue: str) -> RequeuePayload:
        return await _requeue(info, queue, dlq.REQUEUE_ALL_MAX)

    @strawberry.mutation(
        permission_classes=[CanOperatePlatform],
        description="Take every task out of a DLQ (they stay FAILED in history).",
        extensions=[CaptureErrors()],
    )
    async def clear_dlq(self, info: Info, queue: str) -> ClearDlqPayload:
        async with info.context.writing() as session:
            name = await dlq_queue(info, session, queue)
            cleared = await dlq.clear(session=session, queue=name)
        return ClearDlqPayload(cleared_count=cleared, errors=[])

    @strawberry.mutation(permission_classes=[CanOperatePlatform], extensions=[CaptureErrors()])
    async def reset_circuit_breaker(self, info: Info, name: str) -> BreakerPayload:
        breakers = breakers_of(info)
        known = {b.name for b in await breakers.states(configured_breakers(info))}
        if name not in known:
            raise NotFound(f"unknown circuit breaker {name!r}", field="name")
        await breakers.reset(name)
        (state,) = [b for b in await breakers.states([name]) if b.name == name]
        return BreakerPayload(circuit_breaker=CircuitBreaker.of(state), errors=[])
