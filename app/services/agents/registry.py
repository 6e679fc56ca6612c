"""Heartbeats: an agent registers or updates itself, leaves a metrics sample, and gets back
what operators want of it. A pause whose time is up ends here too (the agent learns it on
this very beat)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Agent, AgentControl, AgentSample
from app.kernel.errors import DomainError, InvalidInput, NotFound
from app.platform import clock
from app.services.agents import announce
from app.services.agents.status import StatusRules, status_of
from app.services.rows import of_tenant, one


@dataclass(frozen=True)
class Metrics:
    requests: int = 0
    errors: int = 0
    errors_by_type: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    latency_avg_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    tokens_by_model: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Heartbeat:
    name: str
    type: str
    version: str | None = None
    location_id: str | None = None
    tenant_id: str | None = None
    state: str = "running"  # running | starting | stopping
    configuration: dict[str, Any] = field(default_factory=dict)
    health_checks: list[dict[str, Any]] = field(default_factory=list)
    dependencies: list[dict[str, Any]] = field(default_factory=list)
    issues: list[dict[str, Any]] = field(default_factory=list)
    metrics: Metrics = field(default_factory=Metrics)


@dataclass(frozen=True)
class DesiredState:
    state: str  # running | paused
    restart_generation: int
    replicas: int
    resume_at: datetime | None


class AgentIdTaken(DomainError):
    """The id is held by another tenant, or reserved to opsgraph's own workers (409)."""

    code = "agent_id_taken"


# opsgraph's worker processes report as agents with ids of this prefix: installation-wide,
# never claimable by a report from outside
WORKER_AGENT_PREFIX = "opsgraph_worker_"

AGENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
MAX_LATENCIES = 1_000  # latencies one beat reports (each later fed to percentile_cont)
MAX_KEYS = 100  # error types, models: keys of one beat's breakdowns
MAX_KEY_CHARS = 128
MAX_LATENCY_MS = 3_600_000.0
MAX_COUNT = 2**31 - 1
MAX_TOKENS = 10**15
CHECK_STATUSES = ("pass", "warn", "fail")


def validate(beat: Heartbeat) -> None:
    """What a beat must be, whichever door it came through (REST's model says the same to
    OpenAPI; GraphQL's input types cannot say bounds)."""
    if beat.state not in ("running", "starting", "stopping"):
        raise InvalidInput("state must be running, starting or stopping", field="state")
    for name, value in (("name", beat.name), ("type", beat.type)):
        if not value or len(value) > (255 if name == "name" else 64):
            raise InvalidInput(
                f"{name} must be 1 to {255 if name == 'name' else 64} characters", field=name
            )
    for i, check in enumerate(beat.health_checks):
        if str(check.get("status")) not in CHECK_STATUSES:
            raise InvalidInput(
                f"health check {i}: status must be pass, warn or fail", field="health_checks"
            )
    m = beat.metrics
    for name, count, top in (
        ("requests", m.requests, MAX_COUNT),
        ("errors", m.errors, MAX_COUNT),
        ("input_tokens", m.input_tokens, MAX_TOKENS),
        ("output_tokens", m.output_tokens, MAX_TOKENS),
    ):
        if not 0 <= count <= top:
            raise InvalidInput(f"{name} must be between 0 and {top}", field=f"metrics.{name}")
    if len(m.latencies_ms) > MAX_LATENCIES or any(
        not 0 <= ms <= MAX_LATENCY_MS for ms in m.latencies_ms
    ):
        raise InvalidInput(
            f"latency_ms: at most {MAX_LATENCIES} values, each 0 to {MAX_LATENCY_MS:g}",
            field="metrics.latency_ms",
        )
    for name, breakdown in (
        ("errors_by_type", m.errors_by_type),
        ("tokens_by_model", m.tokens_by_model),
    ):
        if len(breakdown) > MAX_KEYS or any(len(str(k)) > MAX_KEY_CHARS for k in breakdown):
            raise InvalidInput(
                f"{name}: at most {MAX_KEYS} keys of at most {MAX_KEY_CHARS} characters",
                field=f"metrics.{name}",
            )
    for kind, n in m.errors_by_type.items():
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= MAX_COUNT:
            raise InvalidInput(
                f"errors_by_type[{kind!r}] must be a count", field="metrics.errors_by_type"
            )
    for model, t in m.tokens_by_model.items():
        counts = list(t.values()) if isinstance(t, dict) else [t]
        if not counts or any(
            not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= MAX_TOKENS
            for n in counts
        ):
            raise InvalidInput(
                f"tokens_by_model[{model!r}] must be a count or {{input, output}} counts",
                field="metrics.tokens_by_model",
            )


def desired(agent: Agent) -> DesiredState:
    return DesiredState(
        state=agent.desired_state,
        restart_generation=agent.restart_generation,
        replicas=agent.replicas,
        resume_at=agent.resume_at,
    )


async def get_agent(
    *, session: AsyncSession, agent_id: str, tenant_id: str | None = None, for_update: bool = False
) -> Agent:
    """The agent; NotFound for an unknown one and for another tenant's (never 403: its
    existence is not disclosed)."""
    stmt = of_tenant(select(Agent).where(Agent.id == agent_id), Agent.tenant_id, tenant_id)
    missing = NotFound(f"agent {agent_id!r} not found", field="agent_id", code="agent_not_found")
    agent: Agent = await one(session, stmt, missing, for_update=for_update)
    return agent


def resume_if_due(session: AsyncSession, agent: Agent, now: datetime) -> bool:
    if agent.desired_state == "paused" and agent.resume_at is not None and agent.resume_at <= now:
        agent.desired_state = "running"
        agent.paused_at = None
        agent.resume_at = None
        session.add(
            AgentControl(
                agent_id=agent.id,
                action="auto_resume",
                reason="pause duration elapsed",
                actor="opsgraph",
                at=now,
                previous_status="paused",
                details={},
            )
        )
        return True
    return False


def quick_status(agent: Agent, now: datetime, rules: StatusRules) -> str:
    """The status without the error rate (that takes a query): a healthy never overrides a
    degraded the evaluator found from the error rate; its next pass corrects the rest."""
    state = status_of(agent, now=now, error_rate=None, rules=rules)
    return "degraded" if state == "healthy" and agent.observed_status == "degraded" else state


async def heartbeat(
    *,
    session: AsyncSession,
    agent_id: str,
    beat: Heartbeat,
    rules: StatusRules,
    tenant_id: str | None = None,
    system: bool = False,
) -> tuple[Agent, DesiredState]:
    """Register or update `agent_id` from one beat; return it and what it should do now.
    Agent ids are owned by the tenant that first reported them: a tenant-scoped caller may
    only report agents of its tenant (409 for an id another tenant or the installation
    holds). `system`: opsgraph's own worker reporting itself (installation-wide)."""
    if not AGENT_ID.match(agent_id):
        raise InvalidInput("agent ids are 1 to 128 of A-Z a-z 0-9 _ . : -", field="agent_id")
    validate(beat)
    if agent_id.startswith(WORKER_AGENT_PREFIX) and not system:
        raise AgentIdTaken(
            f"agent ids starting {WORKER_AGENT_PREFIX!r} are reserved to opsgraph's workers",
            field="agent_id",
        )
    now = clock.now()
    agent = await session.get(Agent, agent_id, with_for_update=True)
    owner = None if system else tenant_id if tenant_id is not None else beat.tenant_id
    if agent is None:
        agent = Agent(
            id=agent_id,
            tenant_id=owner,
            desired_state="running",
            restart_generation=0,
            replicas=1,
            first_seen_at=now,
            started_at=now,
        )
        session.add(agent)
    elif system:
        agent.tenant_id = None  # a worker's agent is the installation's, whoever named it first
    elif tenant_id is not None and agent.tenant_id != tenant_id:
        # the id is another tenant's (or the installation's): a report never takes it over
        raise AgentIdTaken(f"agent id {agent_id!r} is taken", field="agent_id")
    if agent.started_at is None or beat.state == "starting":
        agent.started_at = now
    agent.name, agent.type, agent.version = beat.name, beat.type, beat.version
    agent.location_id = beat.location_id
    agent.configuration = beat.configuration
    agent.health_checks = beat.health_checks
    agent.dependencies = beat.dependencies
    agent.issues = beat.issues
    agent.reported_state = beat.state
    agent.last_heartbeat_at = now
    resume_if_due(session, agent, now)
    await announce.status(session, agent, quick_status(agent, now, rules))
    m = beat.metrics
    session.add(
        AgentSample(
            agent_id=agent_id,
            at=now,
            requests=m.requests,
            errors=m.errors,
            errors_by_type=m.errors_by_type,
            latencies_ms=m.latencies_ms,
            latency_avg_ms=m.latency_avg_ms,
            latency_p95_ms=m.latency_p95_ms,
            latency_p99_ms=m.latency_p99_ms,
            input_tokens=m.input_tokens,
            output_tokens=m.output_tokens,
            tokens_by_model=m.tokens_by_model,
        )
    )
    await session.flush()
    return agent, desired(agent)
