"""Reading workflows: filtered, sorted pages, counts and aggregate statistics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import Workflow
from app.kernel.paging import Page, PageRequest, fetch_page
from app.services.tasks import counters


def scoped(stmt: Any, tenant_id: str | None) -> Any:
    return stmt if tenant_id is None else stmt.where(Workflow.origin_tenant_id == tenant_id)


@dataclass
class WorkflowFilter:
    statuses: Sequence[str] = ()
    origin_instance: str | None = None
    origin_zone: str | None = None
    origin_tenant_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    search: str | None = None


ORDER_FIELDS: dict[str, Any] = {
    "created_at": Workflow.created_at,
    "updated_at": Workflow.updated_at,
    "started_at": Workflow.started_at,
    "completed_at": Workflow.completed_at,
    "name": Workflow.name,
    "status": Workflow.status,
    "progress": Workflow.progress,
    "total_steps": Workflow.total_steps,
    "duration_ms": Workflow.completed_at - Workflow.started_at,
}


def _filtered(stmt: Any, f: WorkflowFilter, tenant_id: str | None) -> Any:
    stmt = scoped(stmt, tenant_id)
    if f.statuses:
        stmt = stmt.where(Workflow.status.in_(list(f.statuses)))
    if f.origin_instance is not None:
        stmt = stmt.where(Workflow.origin_instance == f.origin_instance)
    if f.origin_zone is not None:
        stmt = stmt.where(Workflow.origin_zone == f.origin_zone)
    if f.origin_tenant_id is not None:
        stmt = stmt.where(Workflow.origin_tenant_id == f.origin_tenant_id)
    if f.created_after is not None:
        stmt = stmt.where(Workflow.created_at > f.created_after)
    if f.created_before is not None:
        stmt = stmt.where(Workflow.created_at < f.created_before)
    if f.search:
        term = f.search.replace("%", "").replace("_", "")
        stmt = stmt.where(
            Workflow.name.ilike(f"%{term}%") | cast(Workflow.id, String).like(term.lower() + "%")
        )
    return stmt


async def list_workflows(
    *,
    session: AsyncSession,
    filter: WorkflowFilter,
    page: PageRequest,
    tenant_id: str | None = None,
) -> Page[Workflow]:
    return await fetch_page(
        session,
        _filtered(select(Workflow), filter, tenant_id),
        order_fields=ORDER_FIELDS,
        id_column=Workflow.id,
        request=page,
    )


async def count_workflows(
    *, session: AsyncSession, filter: WorkflowFilter, tenant_id: str | None = None
) -> int:
    stmt = _filtered(select(func.count()).select_from(Workflow), filter, tenant_id)
    return int((await session.execute(stmt)).scalar_one())


@dataclass
class WorkflowStats:
    total_workflows: int
    by_status: dict[str, int]
    workflows_last_hour: int
    workflows_last_24h: int
    avg_steps_per_workflow: float


async def workflow_stats(
    *,
    session: AsyncSession,
    tenant_id: str | None = None,
    origin_instance: str | None = None,
    origin_zone: str | None = None,
) -> WorkflowStats:
    now = utcnow()

    def scoped(stmt: Any) -> Any:
        return _filtered(
            stmt,
            WorkflowFilter(origin_instance=origin_instance, origin_zone=origin_zone),
            tenant_id,
        )

    if origin_instance is None and origin_zone is None:
        # the maintained counters and rollups (migration 0014): no scan of the workflows
        counts = await counters.workflow_counts(
            session=session,
            since=(now - timedelta(hours=1), now - timedelta(hours=24)),
            tenant_id=tenant_id,
        )
        total = sum(counts.by_status.values())
        return WorkflowStats(
            total_workflows=total,
            by_status=counts.by_status,
            workflows_last_hour=counts.created[0],
            workflows_last_24h=counts.created[1],
            avg_steps_per_workflow=round(counts.steps / total, 2) if total else 0.0,
        )
    by_status = {
        str(k): int(n)
        for k, n in (
            await session.execute(
                scoped(select(Workflow.status, func.count()).group_by(Workflow.status))
            )
        ).all()
    }
    hour, day, avg_steps = (
        await session.execute(
            scoped(
                select(
                    func.count().filter(Workflow.created_at >= now - timedelta(hours=1)),
                    func.count().filter(Workflow.created_at >= now - timedelta(hours=24)),
                    func.avg(Workflow.total_steps),
                ).select_from(Workflow)
            )
        )
    ).one()
    return WorkflowStats(
        total_workflows=sum(by_status.values()),
        by_status=by_status,
        workflows_last_hour=int(hour),
        workflows_last_24h=int(day),
        avg_steps_per_workflow=round(float(avg_steps or 0.0), 2),
    )
