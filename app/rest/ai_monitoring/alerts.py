"""Seed 004's alerts: list with the severity summary, acknowledge, resolve, and the rule set
(PUT replaces it whole; GET, beyond the seed, reads it back)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, StrictFloat, StrictInt

from app.auth.principals import Principal
from app.db.models import Alert, AlertRule
from app.edge.state import AppState
from app.edge.uow import read_only
from app.kernel.bounds import LIMIT_MAX
from app.kernel.paging import PageRequest
from app.rest.ai_monitoring.errors import documented, fail
from app.rest.deps import Operator, PlatformOperator, Reader, State
from app.rest.pages import listed
from app.rest.params import JsonInt, Offset, PathId
from app.rest.refusals import writing
from app.services.monitoring import alerts, rules

router = APIRouter(prefix="/api/v1/monitoring/alerts", tags=["AI Monitoring: alerts"])
NOT_FOUND = documented((404, "alert_not_found"), (409, "alert_already_resolved"))
Text = Annotated[str, Field(max_length=4000)]


def alert_out(a: Alert) -> dict[str, Any]:
    out = alerts.snapshot(a)
    out.pop("rule")
    out["rule_name"] = a.rule_name
    out["acknowledge_notes"] = a.acknowledge_notes
    out["resolution"] = a.resolution
    out["root_cause"] = a.root_cause
    out["remediation_attempts"] = a.remediation_attempts
    return out


@router.get("", summary="List Alerts")
async def list_alerts(
    state: State,
    principal: Reader,
    status: Literal["active", "acknowledged", "resolved"] | None = None,
    severity: Literal["critical", "warning", "info"] | None = None,
    agent_id: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=LIMIT_MAX, description="Beyond the seed")] = 100,
    offset: Offset = 0,
) -> Any:
    """Newest first. `summary` counts open (active or acknowledged) alerts by severity within
    the agent filter; `total` is the number matching every filter."""
    f = alerts.AlertFilter(
        status=status, severity=severity, agent_id=agent_id, tenant_id=principal.tenant_id
    )
    window = PageRequest(limit=limit, order_by="triggered_at", offset=offset)
    async with read_only(state.sessionmaker) as session:
        found, total = await listed(session, alerts.ALERTS, f, window)
        summary = await alerts.severity_counts(
            session=session,
            filter=alerts.AlertFilter(agent_id=agent_id, tenant_id=principal.tenant_id),
        )
    return {"alerts": [alert_out(a) for a in found], "summary": summary, "total": total}


class AckIn(BaseModel):
    notes: Text | None = None


class ResolveIn(BaseModel):
    resolution: Text | None = None
    root_cause: Text | None = None


async def _act(
    action: Callable[..., Awaitable[Alert]],
    alert_id: uuid.UUID,
    state: AppState,
    principal: Principal,
    body: BaseModel,
) -> dict[str, Any]:
    """Acknowledge or resolve the caller's alert, by the caller, with the body's fields."""
    async with writing(state, fail) as session:
        alert = await action(
            session=session,
            alert_id=alert_id,
            actor=principal.subject,
            tenant_id=principal.tenant_id,
            **body.model_dump(),
        )
    return alert_out(alert)


@router.post("/{alert_id}/acknowledge", responses=NOT_FOUND, summary="Acknowledge Alert")
async def acknowledge(
    alert_id: PathId, state: State, principal: Operator, body: AckIn | None = None
) -> Any:
    return await _act(alerts.acknowledge, alert_id, state, principal, body or AckIn())


@router.post("/{alert_id}/resolve", responses=NOT_FOUND, summary="Resolve Alert")
async def resolve(
    alert_id: PathId, state: State, principal: Operator, body: ResolveIn | None = None
) -> Any:
    return await _act(alerts.resolve, alert_id, state, principal, body or ResolveIn())


# --- rules ----------------------------------------------------------------------------------


class Condition(BaseModel):
    metric: Annotated[str, Field(max_length=64)]
    operator: Literal["gt", "gte", "lt", "lte", "eq", "ne"]
    threshold: StrictFloat | StrictInt = Field(ge=-1e15, le=1e15)
    duration_minutes: JsonInt = Field(0, ge=0, le=rules.MAX_DURATION_MINUTES)


class Remediation(BaseModel):
    action: Literal["restart"]
    max_attempts: JsonInt = Field(1, ge=1, le=rules.MAX_REMEDIATION_ATTEMPTS)


class RuleIn(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    condition: Condition
    severity: Literal["critical", "warning", "info"]
    channels: list[Literal["webhook", "slack", "email", "pagerduty"]] = Field(
        default_factory=list, max_length=4
    )
    recipients: list[Annotated[str, Field(max_length=320)]] = Field(
        default_factory=list, max_length=50
    )
    auto_remediate: Remediation | None = None


class RulesIn(BaseModel):
    rules: list[RuleIn] = Field(max_length=rules.MAX_RULES)


def rule_out(r: AlertRule) -> dict[str, Any]:
    return {
        "id": str(r.id),
        "name": r.name,
        "condition": {
            "metric": r.metric,
            "operator": r.operator,
            "threshold": r.threshold,
            "duration_minutes": r.duration_minutes,
        },
        "severity": r.severity,
        "channels": r.channels,
        "recipients": r.recipients,
        "auto_remediate": r.auto_remediate,
        "updated_by": r.updated_by,
        "updated_at": r.updated_at,
    }


@router.put(
    "/rules",
    responses=documented((400, "invalid_metric")),
    summary="Configure Alert Rules",
)
async def put_rules(body: RulesIn, state: State, principal: PlatformOperator) -> Any:
    """Replaces the whole rule set, or nothing when any rule is invalid (400 `invalid_metric`
    names an unknown metric). Rules are installation-wide: tenant-scoped credentials get 403."""
    wanted = [
        rules.RuleInput(
            name=r.name,
            metric=r.condition.metric,
            operator=r.condition.operator,
            threshold=float(r.condition.threshold),
            duration_minutes=r.condition.duration_minutes,
            severity=r.severity,
            channels=list(r.channels),
            recipients=list(r.recipients),
            auto_remediate=r.auto_remediate.model_dump() if r.auto_remediate else None,
        )
        for r in body.rules
    ]
    async with writing(state, fail) as session:
        saved = await rules.set_rules(session=session, rules=wanted, actor=principal.subject)
        out = [rule_out(r) for r in saved]
    return {"rules": out, "count": len(out)}


@router.get("/rules", summary="Get Alert Rules (beyond the seed)")
async def get_rules(state: State, principal: Reader) -> Any:
    async with read_only(state.sessionmaker) as session:
        saved = await rules.list_rules(session)
        return {
            "rules": [rule_out(r) for r in saved],
            "metrics": {
                name: {"unit": m.unit, "description": m.description}
                for name, m in rules.METRICS.items()
            },
        }
