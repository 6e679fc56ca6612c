"""Alerts and alert rules in GraphQL: the alerts connection and severity summary, the rule
set and the metrics a rule may name; acknowledge, resolve, replace the rules."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry

from app.db.models import Alert as AlertRow
from app.db.models import AlertRule as RuleRow
from app.gql.context import Info
from app.gql.errors import CaptureErrors, success
from app.gql.forward import forward
from app.gql.pagination import Connection, Listed, Paged, Slice, Sort, connection
from app.gql.permissions import CanOperate, CanOperatePlatform, CanRead
from app.gql.reads import or_null
from app.kernel.errors import NotFound
from app.services.monitoring import alerts, rules


@strawberry.enum
class AlertSeverity(Enum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


@strawberry.enum
class AlertStatus(Enum):
    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


@strawberry.type
class AlertThreshold:
    metric: str
    operator: str
    value: float
    current: float | None


@strawberry.type
class Alert:
    id: strawberry.ID
    agent_id: str
    rule_name: str
    type: str
    severity: AlertSeverity
    status: AlertStatus
    title: str
    message: str
    threshold: AlertThreshold
    triggered_at: datetime
    last_occurrence: datetime
    occurrence_count: int
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    acknowledge_notes: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None
    root_cause: str | None
    auto_resolved: bool
    remediation_attempts: int

    @classmethod
    def of(cls, a: AlertRow) -> Alert:
        return forward(cls, a, threshold=forward(AlertThreshold, a, value=a.threshold))


@strawberry.type
class AlertSummary:
    critical: int
    warning: int
    info: int


@strawberry.type
class AutoRemediation:
    action: str
    max_attempts: int


@strawberry.type
class AlertRule:
    id: strawberry.ID
    name: str
    metric: str
    operator: str
    threshold: float
    duration_minutes: int
    severity: AlertSeverity
    channels: list[str]
    recipients: list[str]
    auto_remediate: AutoRemediation | None
    updated_by: str
    updated_at: datetime

    @classmethod
    def of(cls, r: RuleRow) -> AlertRule:
        plan = r.auto_remediate
        remediation = (
            AutoRemediation(
                action=str(plan["action"]), max_attempts=int(plan.get("max_attempts", 1))
            )
            if plan
            else None
        )
        return forward(cls, r, auto_remediate=remediation)


@strawberry.type
class AlertMetric:
    name: str
    unit: str
    description: str


@strawberry.input
class AlertFilter:
    status: AlertStatus | None = None
    severity: AlertSeverity | None = None
    agent_id: str | None = None


ALERTS = Listed("alerts", alerts.ALERTS, Alert.of, Sort("triggered_at"))


@strawberry.type
class AlertQueries:
    @strawberry.field(
        permission_classes=[CanRead],
        description="Alerts, newest first.",
        extensions=[Paged(AlertFilter)],
    )
    async def alerts(self, info: Info, window: Slice) -> Connection[Alert]:
        f: AlertFilter = window.filter
        scope = alerts.AlertFilter(
            status=f.status.value if f.status else None,
            severity=f.severity.value if f.severity else None,
            agent_id=f.agent_id,
            tenant_id=info.context.tenant_id,
        )
        return await connection(info, window, ALERTS, scope)

    @strawberry.field(
        permission_classes=[CanRead], description="Open alerts by severity (seed 004's summary)."
    )
    async def alert_summary(self, info: Info, agent_id: str | None = None) -> AlertSummary:
        async with info.context.reading() as session:
            counts = await alerts.severity_counts(
                session=session,
                filter=alerts.AlertFilter(agent_id=agent_id, tenant_id=info.context.tenant_id),
            )
        return AlertSummary(**counts)

    @strawberry.field(permission_classes=[CanRead], description="One alert, or null.")
    async def alert(self, info: Info, id: strawberry.ID) -> Alert | None:
        try:
            alert_id = uuid.UUID(str(id))
        except ValueError:
            return None
        tenant = info.context.tenant_id
        return await or_null(
            info,
            lambda s: alerts.get_alert(session=s, alert_id=alert_id, tenant_id=tenant),
            Alert.of,
        )

    @strawberry.field(permission_classes=[CanRead], description="The rule set, in order.")
    async def alert_rules(self, info: Info) -> list[AlertRule]:
        async with info.context.reading() as session:
            return [AlertRule.of(r) for r in await rules.list_rules(session)]

    @strawberry.field(permission_classes=[CanRead], description="The metrics a rule may name.")
    def alert_metrics(self) -> list[AlertMetric]:
        return [forward(AlertMetric, m, name=name) for name, m in rules.METRICS.items()]


@strawberry.type
class MonitoringError:
    field: str | None
    code: str = strawberry.field(
        description="alert_not_found, alert_already_resolved, invalid_metric,"
        " subscription_not_found, insufficient_permissions, INVALID"
    )
    message: str


@strawberry.type
class AlertPayload:
    alert: Alert | None
    errors: list[MonitoringError]


@strawberry.type
class AlertRulesPayload:
    rules: list[AlertRule]
    errors: list[MonitoringError]


@strawberry.input
class AutoRemediationInput:
    action: str = "restart"
    max_attempts: int = 1


@strawberry.input
class AlertRuleInput:
    name: str
    metric: str
    operator: str
    threshold: float
    severity: AlertSeverity
    duration_minutes: int = 0
    channels: list[str] = strawberry.field(default_factory=list)
    recipients: list[str] = strawberry.field(default_factory=list)
    auto_remediate: AutoRemediationInput | None = None


@strawberry.type
class AlertMutations:
    @strawberry.mutation(permission_classes=[CanOperate], extensions=[CaptureErrors()])
    async def ack_alert(
        self, info: Info, id: strawberry.ID, notes: str | None = None
    ) -> AlertPayload:
        return await _change(info, alerts.acknowledge, id, notes=notes)

    @strawberry.mutation(permission_classes=[CanOperate], extensions=[CaptureErrors()])
    async def resolve_alert(
        self,
        info: Info,
        id: strawberry.ID,
        resolution: str | None = None,
        root_cause: str | None = None,
    ) -> AlertPayload:
        return await _change(info, alerts.resolve, id, resolution=resolution, root_cause=root_cause)

    @strawberry.mutation(
        permission_classes=[CanOperatePlatform],
        description="Replace the whole rule set; nothing changes when any rule is invalid."
        " Installation-wide: tenant-scoped credentials get FORBIDDEN.",
        extensions=[CaptureErrors()],
    )
    async def set_alert_rules(
        self,
        info: Info,
        rule_set: Annotated[list[AlertRuleInput], strawberry.argument(name="rules")],
    ) -> AlertRulesPayload:
        ctx = info.context
        wanted = [
            forward(
                rules.RuleInput,
                r,
                severity=r.severity.value,
                channels=list(r.channels),
                recipients=list(r.recipients),
                auto_remediate=dataclasses.asdict(r.auto_remediate) if r.auto_remediate else None,
            )
            for r in rule_set
        ]
        async with ctx.writing() as session:
            saved = await rules.set_rules(session=session, rules=wanted, actor=ctx.actor)
            out = [AlertRule.of(r) for r in saved]
        return AlertRulesPayload(rules=out, errors=[])


async def _change(
    info: Info, action: Callable[..., Awaitable[AlertRow]], id: strawberry.ID, **more: Any
) -> AlertPayload:
    """One operator's change of an alert, by the caller (actor, tenant)."""
    row = await info.context.act_as_caller(action, alert_id=_alert_id(id), **more)
    return success(AlertPayload, Alert.of(row))


def _alert_id(id: strawberry.ID) -> uuid.UUID:
    try:
        return uuid.UUID(str(id))
    except ValueError:
        raise NotFound(f"alert {id} not found", field="id", code="alert_not_found") from None
