"""Alerts: what operators see and do (list with counts, acknowledge, resolve), and the one
place an alert changes state, so every change is published and notified the same way."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Alert, AlertPending
from app.kernel.errors import DomainError, NotFound
from app.platform import clock
from app.services.monitoring import notify
from app.services.rows import Listing, matching, of_tenant, one

STATUSES = ("active", "acknowledged", "resolved")
ORDER = {"triggered_at": Alert.triggered_at}


class AlertAlreadyResolved(DomainError):
    code = "alert_already_resolved"


@dataclass(frozen=True)
class AlertFilter:
    status: str | None = None
    severity: str | None = None
    agent_id: str | None = None
    tenant_id: str | None = None


def snapshot(alert: Alert) -> dict[str, Any]:
    """The alert as events and webhooks carry it (the REST shape, seed 004)."""

    def iso(at: datetime | None) -> str | None:
        return at.isoformat() if at else None

    return {
        "id": str(alert.id),
        "agent_id": alert.agent_id,
        "tenant_id": alert.tenant_id,
        "rule": alert.rule_name,
        "type": alert.type,
        "severity": alert.severity,
        "status": alert.status,
        "title": alert.title,
        "message": alert.message,
        "threshold": {
            "metric": alert.metric,
            "operator": alert.operator,
            "value": alert.threshold,
            "current": alert.current,
        },
        "triggered_at": iso(alert.triggered_at),
        "last_occurrence": iso(alert.last_occurrence),
        "occurrence_count": alert.occurrence_count,
        "acknowledged_by": alert.acknowledged_by,
        "acknowledged_at": iso(alert.acknowledged_at),
        "resolved_at": iso(alert.resolved_at),
        "resolved_by": alert.resolved_by,
        "auto_resolved": alert.auto_resolved,
    }


def changed(
    session: AsyncSession,
    alert: Alert,
    subscribers: list[Any],
    *,
    event: str | None,
) -> None:
    """Announce a change: to GraphQL subscribers always, to webhooks when it has a name."""
    data = snapshot(alert)
    notify.publish(session, "alert", str(alert.id), data)
    if event is not None:
        notify.emit(
            session,
            event,
            data,
            object_id=str(alert.id),
            tenant_id=alert.tenant_id,
            subscribers=subscribers,
            channels=list(alert.channels),
        )


def _filtered(stmt: Select[Any], f: AlertFilter) -> Select[Any]:
    return matching(stmt, Alert, f, "status", "severity", "agent_id", "tenant_id")


ALERTS: Listing[Alert, AlertFilter] = Listing(Alert, _filtered, ORDER)
list_alerts, count_alerts = ALERTS.page, ALERTS.count


async def severity_counts(*, session: AsyncSession, filter: AlertFilter) -> dict[str, int]:
    """The seed's `summary`: open (not resolved) alerts by severity, within the filter's
    agent and tenant (and status, when it asks for open ones)."""
    open_: Select[Any] = cast(
        "Select[Any]", select(Alert.severity, func.count()).where(Alert.status != "resolved")
    )
    stmt = _filtered(open_, filter).group_by(Alert.severity)
    counts = {"critical": 0, "warning": 0, "info": 0}
    for severity, n in (await session.execute(stmt)).all():
        counts[severity] = int(n)
    return counts


async def get_alert(
    *, session: AsyncSession, alert_id: uuid.UUID, tenant_id: str | None, for_update: bool = False
) -> Alert:
    stmt = of_tenant(select(Alert).where(Alert.id == alert_id), Alert.tenant_id, tenant_id)
    missing = NotFound(f"alert {alert_id} not found", field="alert_id", code="alert_not_found")
    alert: Alert = await one(session, stmt, missing, for_update=for_update)
    return alert


async def _unresolved(session: AsyncSession, alert_id: uuid.UUID, tenant_id: str | None) -> Alert:
    """The alert, locked for a change; AlertAlreadyResolved (409) when it is resolved."""
    alert = await get_alert(
        session=session, alert_id=alert_id, tenant_id=tenant_id, for_update=True
    )
    if alert.status == "resolved":
        raise AlertAlreadyResolved(f"alert {alert_id} is already resolved", field="alert_id")
    return alert


async def acknowledge(
    *,
    session: AsyncSession,
    alert_id: uuid.UUID,
    actor: str,
    notes: str | None,
    tenant_id: str | None,
) -> Alert:
    """Acknowledging an acknowledged alert updates who and the notes; a resolved one is 409."""
    alert = await _unresolved(session, alert_id, tenant_id)
    alert.status = "acknowledged"
    alert.acknowledged_by, alert.acknowledged_at = actor, clock.now()
    alert.acknowledge_notes = notes
    changed(session, alert, [], event=None)
    await session.flush()
    return alert


def close(
    session: AsyncSession,
    alert: Alert,
    *,
    by: str,
    resolution: str | None,
    root_cause: str | None = None,
    automatic: bool,
    subscribers: list[Any],
) -> None:
    alert.status = "resolved"
    alert.resolved_at, alert.resolved_by = clock.now(), by
    alert.resolution, alert.root_cause = resolution, root_cause
    alert.auto_resolved = automatic
    changed(session, alert, subscribers, event="monitoring.alert_resolved")


async def resolve(
    *,
    session: AsyncSession,
    alert_id: uuid.UUID,
    actor: str,
    resolution: str | None,
    root_cause: str | None,
    tenant_id: str | None,
) -> Alert:
    alert = await _unresolved(session, alert_id, tenant_id)
    close(
        session,
        alert,
        by=actor,
        resolution=resolution,
        root_cause=root_cause,
        automatic=False,
        subscribers=await notify.load_subscribers(session),
    )
    if alert.rule_id is not None:
        # resolved while the condition may still hold: quiet until it has cleared once
        await session.execute(
            insert(AlertPending)
            .values(
                rule_id=alert.rule_id, agent_id=alert.agent_id, since=clock.now(), suppressed=True
            )
            .on_conflict_do_update(
                index_elements=["rule_id", "agent_id"], set_={"suppressed": True}
            )
        )
    await session.flush()
    return alert
