"""Alerts and alert rules in GraphQL: the alerts connection and severity summary, the rule
set and the metrics a rule may name; acknowledge, resolve, replace the rules."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Alert as AlertRow
from app.db.models import AlertRule as RuleRow
from app.gql.context import Info
from app.gql.pagination import Connection, Slice, connection
from app.gql.permissions import CanOperate, CanOperatePlatform, CanRead
from app.services.errors import DomainError, NotFound
from app.services.monitoring import alerts, rules
from app.services.paging import Page, PageRequest
from app.uow import read_only, unit_of_work


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
        return cls(
            id=strawberry.ID(str(a.id)),
            agent_id=a.agent_id,
            rule_name=a.rule_name,
            type=a.type,
            severity=AlertSeverity(a.severity),
            status=AlertStatus(a.status),
            title=a.title,
            message=a.message,
            threshold=AlertThreshold(
                metric=a.metric, operator=a.operator, value=a.threshold, current=a.current
            ),
            triggered_at=a.triggered_at,
            last_occurrence=a.last_occurrence,
            occurrence_count=a.occurrence_count,
            acknowledged_by=a.acknowledged_by,
            acknowledged_at=a.acknowledged_at,
            acknowledge_notes=a.acknowledge_notes,
            resolved_at=a.resolved_at,
            resolved_by=a.resolved_by,
            resolution=a.resolution,
            root_cause=a.root_cause,
            auto_resolved=a.auto_resolved,
            remediation_attempts=a.remediation_attempts,
        )


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
        return cls(
            id=strawberry.ID(str(r.id)),
            name=r.name,
            metric=r.metric,
            operator=r.operator,
            threshold=r.threshold,
            duration_minutes=r.duration_minutes,
            severity=AlertSeverity(r.severity),
            channels=list(r.channels),
            recipients=list(r.recipients),
            auto_remediate=AutoRemediation(
                action=str(plan["action"]), max_attempts=int(plan.get("max_attempts", 1))
            )
            if plan
            else None,
            updated_by=r.updated_by,
            updated_at=r.updated_at,
        )


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


@strawberry.type
class AlertQueries:
    @strawberry.field(permission_classes=[CanRead], description="Alerts, newest first.")
    async def alerts(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        filter: AlertFilter | None = None,
    ) -> Connection[Alert]:
        f = filter or AlertFilter()
        scope = alerts.AlertFilter(
            status=f.status.value if f.status else None,
            severity=f.severity.value if f.severity else None,
            agent_id=f.agent_id,
            tenant_id=info.context.tenant_id,
        )

        async def rows(session: AsyncSession, request: PageRequest) -> Page[AlertRow]:
            return await alerts.list_alerts(session=session, filter=scope, page=request)

        async def count(session: AsyncSession) -> int:
            return await alerts.count_alerts(session=session, filter=scope)

        return await connection(
            info,
            Slice(first, after, last, before),
            name="alerts",
            order_by="triggered_at",
            descending=True,
            scope=scope,
            rows=rows,
            count=count,
            node=Alert.of,
        )

    @strawberry.field(
        permission_classes=[CanRead], description="Open alerts by severity (seed 004's summary)."
    )
    async def alert_summary(self, info: Info, agent_id: str | None = None) -> AlertSummary:
        async with read_only(info.context.state.sessionmaker) as session:
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
        async with read_only(info.context.state.sessionmaker) as session:
            try:
                row = await alerts.get_alert(
                    session=session, alert_id=alert_id, tenant_id=info.context.tenant_id
                )
            except DomainError:
                return None
        return Alert.of(row)

    @strawberry.field(permission_classes=[CanRead], description="The rule set, in order.")
    async def alert_rules(self, info: Info) -> list[AlertRule]:
        async with read_only(info.context.state.sessionmaker) as session:
            return [AlertRule.of(r) for r in await rules.list_rules(session)]

    @strawberry.field(permission_classes=[CanRead], description="The metrics a rule may name.")
    def alert_metrics(self) -> list[AlertMetric]:
        return [
            AlertMetric(name=name, unit=m.unit, description=m.description)
            for name, m in rules.METRICS.items()
        ]


@strawberry.type
class MonitoringError:
    field: str | None
    code: str = strawberry.field(
        description="alert_not_found, alert_already_resolved, invalid_metric,"
        " subscription_not_found, insufficient_permissions, INVALID"
    )
    message: str


def errors_of(exc: DomainError) -> list[MonitoringError]:
    return [MonitoringError(field=exc.field, code=exc.code, message=exc.message)]


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


def _actor(info: Info) -> str:
    return info.context.principal.subject if info.context.principal else "?"


@strawberry.type
class AlertMutations:
    @strawberry.mutation(permission_classes=[CanOperate])
    async def ack_alert(
        self, info: Info, id: strawberry.ID, notes: str | None = None
    ) -> AlertPayload:
        ctx = info.context
        try:
            async with unit_of_work(ctx.state.sessionmaker, ctx.state.redis) as session:
                row = await alerts.acknowledge(
                    session=session,
                    alert_id=_alert_id(id),
                    actor=_actor(info),
                    notes=notes,
                    tenant_id=ctx.tenant_id,
                )
        except DomainError as exc:
            return AlertPayload(alert=None, errors=errors_of(exc))
        return AlertPayload(alert=Alert.of(row), errors=[])

    @strawberry.mutation(permission_classes=[CanOperate])
    async def resolve_alert(
        self,
        info: Info,
        id: strawberry.ID,
        resolution: str | None = None,
        root_cause: str | None = None,
    ) -> AlertPayload:
        ctx = info.context
        try:
            async with unit_of_work(ctx.state.sessionmaker, ctx.state.redis) as session:
                row = await alerts.resolve(
                    session=session,
                    alert_id=_alert_id(id),
                    actor=_actor(info),
                    resolution=resolution,
                    root_cause=root_cause,
                    tenant_id=ctx.tenant_id,
                )
        except DomainError as exc:
            return AlertPayload(alert=None, errors=errors_of(exc))
        return AlertPayload(alert=Alert.of(row), errors=[])

    @strawberry.mutation(
        permission_classes=[CanOperatePlatform],
        description="Replace the whole rule set; nothing changes when any rule is invalid."
        " Installation-wide: tenant-scoped credentials get FORBIDDEN.",
    )
    async def set_alert_rules(
        self,
        info: Info,
        rule_set: Annotated[list[AlertRuleInput], strawberry.argument(name="rules")],
    ) -> AlertRulesPayload:
        ctx = info.context
        wanted = [
            rules.RuleInput(
                name=r.name,
                metric=r.metric,
                operator=r.operator,
                threshold=r.threshold,
                severity=r.severity.value,
                duration_minutes=r.duration_minutes,
                channels=list(r.channels),
                recipients=list(r.recipients),
                auto_remediate={
                    "action": r.auto_remediate.action,
                    "max_attempts": r.auto_remediate.max_attempts,
                }
                if r.auto_remediate
                else None,
            )
            for r in rule_set
        ]
        try:
            async with unit_of_work(ctx.state.sessionmaker, ctx.state.redis) as session:
                saved = await rules.set_rules(session=session, rules=wanted, actor=_actor(info))
                out = [AlertRule.of(r) for r in saved]
        except DomainError as exc:
            return AlertRulesPayload(rules=[], errors=errors_of(exc))
        return AlertRulesPayload(rules=out, errors=[])


def _alert_id(id: strawberry.ID) -> uuid.UUID:
    try:
        return uuid.UUID(str(id))
    except ValueError:
        raise NotFound(f"alert {id} not found", field="id", code="alert_not_found") from None
