"""An agent's heartbeat (beyond seed 004): it reports its state and metrics in, and reads back
the desired state its controls recorded (pause, resume, restart, scale)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, BeforeValidator, Field, Strict

from app.rest.ai_monitoring.agents import PREFIX, SEED_ERRORS, TAG, AgentId, Text
from app.rest.ai_monitoring.errors import documented, fail
from app.rest.deps import Operator, State
from app.rest.params import JsonInt, json_integer
from app.rest.refusals import writing
from app.services.agents import registry

router = APIRouter(prefix=PREFIX, tags=[TAG])

# one request's latency: a number (not a numeric string), at most an hour
Millis = Annotated[float, Strict(), Field(ge=0, le=3_600_000)]


class Check(BaseModel):
    name: Text
    status: Literal["pass", "warn", "fail"]
    latency_ms: Millis | None = None
    value: Any = None


class Latency(BaseModel):
    avg: Millis | None = None
    p50: Millis | None = None
    p95: Millis | None = None
    p99: Millis | None = None


# bounds before the validator, or JSON Schema gets `ge`/`le` instead of minimum/maximum
TokenCount = Annotated[int, Field(ge=0, le=10**15), BeforeValidator(json_integer)]
Count = Annotated[int, Field(ge=0, le=2**31 - 1), BeforeValidator(json_integer)]


class ModelTokens(BaseModel):
    input: JsonInt = Field(0, ge=0, le=10**15)
    output: JsonInt = Field(0, ge=0, le=10**15)


class Tokens(BaseModel):
    input: JsonInt = Field(0, ge=0, le=10**15)
    output: JsonInt = Field(0, ge=0, le=10**15)
    by_model: dict[str, TokenCount | ModelTokens] = Field(
        default_factory=dict,
        max_length=100,
        description="Per model: {input, output} (costed by the price table) or a bare total"
        " (costed at the input price)",
    )


class BeatMetrics(BaseModel):
    requests: JsonInt = Field(0, ge=0, le=2**31 - 1)
    errors: JsonInt = Field(0, ge=0, le=2**31 - 1)
    errors_by_type: dict[str, Count] = Field(default_factory=dict, max_length=100)
    latency_ms: list[Millis] = Field(default_factory=list, max_length=registry.MAX_LATENCIES)
    latency: Latency | None = None
    tokens: Tokens = Field(default_factory=Tokens)


class HeartbeatIn(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    type: str = Field(min_length=1, max_length=64)
    version: str | None = Field(None, max_length=64)
    location_id: str | None = Field(None, max_length=128)
    tenant_id: str | None = Field(None, max_length=255)
    state: Literal["running", "starting", "stopping"] = "running"
    configuration: dict[str, Any] = Field(default_factory=dict)
    health: dict[str, list[Check]] = Field(default_factory=dict, description='{"checks": [...]}')
    dependencies: list[dict[str, Any]] = Field(default_factory=list, max_length=100)
    issues: list[dict[str, Any]] = Field(default_factory=list, max_length=100)
    metrics: BeatMetrics = Field(default_factory=BeatMetrics)


class DesiredOut(BaseModel):
    state: str
    restart_generation: int
    replicas: int
    resume_at: datetime | None


class HeartbeatOut(BaseModel):
    agent_id: str
    status: str
    desired_state: DesiredOut


def _metrics(m: BeatMetrics) -> registry.Metrics:
    return registry.Metrics(
        requests=m.requests,
        errors=m.errors,
        errors_by_type=m.errors_by_type,
        latencies_ms=m.latency_ms,
        latency_avg_ms=m.latency.avg if m.latency else None,
        latency_p95_ms=m.latency.p95 if m.latency else None,
        latency_p99_ms=m.latency.p99 if m.latency else None,
        input_tokens=m.tokens.input,
        output_tokens=m.tokens.output,
        tokens_by_model={
            k: v.model_dump() if isinstance(v, ModelTokens) else v
            for k, v in m.tokens.by_model.items()
        },
    )


@router.post(
    "/{agent_id}/heartbeat",
    response_model=HeartbeatOut,
    responses={**SEED_ERRORS, **documented((409, "agent_id_taken"))},
    summary="Agent heartbeat (report in; receive the desired state)",
)
async def heartbeat(agent_id: AgentId, body: HeartbeatIn, state: State, principal: Operator) -> Any:
    beat = registry.Heartbeat(
        name=body.name,
        type=body.type,
        version=body.version,
        location_id=body.location_id,
        tenant_id=body.tenant_id,
        state=body.state,
        configuration=body.configuration,
        health_checks=[c.model_dump() for c in body.health.get("checks", [])],
        dependencies=body.dependencies,
        issues=body.issues,
        metrics=_metrics(body.metrics),
    )
    async with writing(state, fail) as session:
        agent, wanted = await registry.heartbeat(
            session=session,
            agent_id=agent_id,
            beat=beat,
            rules=state.settings.agent_rules,
            tenant_id=principal.tenant_id,
        )
        current = agent.observed_status or "healthy"
    return HeartbeatOut(
        agent_id=agent_id, status=current, desired_state=DesiredOut(**wanted.__dict__)
    )
