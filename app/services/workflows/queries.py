"""Reading workflows: filtered, sorted pages, counts and aggregate statistics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, String, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import Workflow
from app.services.rows import Listing, of_tenant
from app.services.tasks import counters
from app.services.tasks.queries import OriginFilter, from_origin, lifecycle_order


def scoped(stmt: Select[Any], tenant_id: str | None) -> Select[Any]:
    return of_tenant(stmt, Workflow.origin_tenant_id, tenant_id)


@dataclass
class WorkflowFilter(OriginFilter):
    statuses: Sequence[str] = ()
    search: str | None = None


ORDER_FIELDS: dict[str, Any] = {
    **lifecycle_order(Workflow),
    "name": Workflow.name,
    "total_steps": Workflow.total_steps,
}


def _filtered(stmt: Select[Any], f: WorkflowFilter, tenant_id: str | None = None) -> Select[Any]:
    stmt = from_origin(scoped(stmt, tenant_id), Workflow, f)
    if f.statuses:
        stmt = stmt.where(Workflow.status.in_(list(f.statuses)))
    if f.search:
        term = f.search.replace("%", "").replace("_", "")
        stmt = stmt.where(
            Workflow.name.ilike(f"%{term}%") | cast(Workflow.id, String).like(term.lower() + "%")
        )
    return stmt


# `tenant_id`: that tenant's workflows only
WORKFLOWS: Listing[Workflow, WorkflowFilter] = Listing(Workflow, _filtered, ORDER_FIELDS)
list_workflows, count_workflows = WORKFLOWS.page, WORKFLOWS.count


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
