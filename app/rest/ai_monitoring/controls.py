"""Seed 004's agent controls: pause, resume, restart, scale. Each records a desired state the
agent reads back with its next heartbeat, and answers what was requested and when."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter
from pydantic import BaseModel, Field, StrictBool, field_validator

from app.auth.principals import Principal
from app.edge.state import AppState
from app.rest.ai_monitoring.agents import PREFIX, SEED_ERRORS, TAG, AgentId, Text
from app.rest.ai_monitoring.errors import fail
from app.rest.deps import Operator, State
from app.rest.params import JsonInt, json_integer
from app.rest.refusals import writing
from app.services.agents import controls

T = TypeVar("T")

router = APIRouter(prefix=PREFIX, tags=[TAG])


class PauseIn(BaseModel):
    reason: Text | None = None
    duration_minutes: Annotated[int, Field(ge=1, le=controls.MAX_PAUSE_MINUTES)] | None = None

    @field_validator("duration_minutes", mode="before")
    @classmethod
    def _integer(cls, value: Any) -> Any:
        return json_integer(value)


class ReasonIn(BaseModel):
    reason: Text | None = None


class RestartIn(BaseModel):
    reason: Text | None = None
    force: StrictBool = False


class ScaleIn(BaseModel):
    replicas: JsonInt = Field(ge=0, le=controls.MAX_REPLICAS)
    reason: Text | None = None


async def _control(
    action: Callable[..., Awaitable[T]],
    agent_id: str,
    state: AppState,
    principal: Principal,
    body: BaseModel,
) -> T:
    """One control on the caller's agent in a unit of work, by the caller, with the body's
    fields as its arguments; a refusal answers as seed 004's coded error."""
    async with writing(state, fail) as session:
        return await action(
            session=session,
            agent_id=agent_id,
            actor=principal.subject,
            rules=state.settings.agent_rules,
            tenant_id=principal.tenant_id,
            **body.model_dump(),
        )


def _requested(agent_id: str, done: controls.ControlResult, **more: Any) -> dict[str, Any]:
    """What a control answers: the agent, its status before, and what was requested when."""
    return {"agent_id": agent_id, "previous_status": done.previous_status, **more}


@router.post("/{agent_id}/pause", responses=SEED_ERRORS, summary="Pause Agent")
async def pause_agent(
    agent_id: AgentId, state: State, principal: Operator, body: PauseIn | None = None
) -> Any:
    done = await _control(controls.pause, agent_id, state, principal, body or PauseIn())
    return _requested(
        agent_id,
        done,
        current_status="paused",
        paused_at=done.at,
        resume_at=done.agent.resume_at,
        # the agent drains its requests when its next heartbeat tells it to pause
        active_requests_drained=False,
    )


@router.post("/{agent_id}/resume", responses=SEED_ERRORS, summary="Resume Agent")
async def resume_agent(
    agent_id: AgentId, state: State, principal: Operator, body: ReasonIn | None = None
) -> Any:
    done = await _control(controls.resume, agent_id, state, principal, body or ReasonIn())
    before = done.previous_status
    return _requested(
        agent_id,
        done,
        current_status="healthy" if before == "paused" else before,
        resumed_at=done.at,
    )


@router.post("/{agent_id}/restart", responses=SEED_ERRORS, summary="Restart Agent")
async def restart_agent(
    agent_id: AgentId, state: State, principal: Operator, body: RestartIn | None = None
) -> Any:
    wanted = body or RestartIn()
    done = await _control(controls.restart, agent_id, state, principal, wanted)
    return _requested(
        agent_id,
        done,
        restart_generation=done.agent.restart_generation,
        force=wanted.force,
        requested_at=done.at,
    )


@router.post("/{agent_id}/scale", responses=SEED_ERRORS, summary="Scale Agent")
async def scale_agent(agent_id: AgentId, body: ScaleIn, state: State, principal: Operator) -> Any:
    done, before = await _control(controls.scale, agent_id, state, principal, body)
    return {
        "agent_id": agent_id,
        "previous_replicas": before,
        "replicas": done.agent.replicas,
        "requested_at": done.at,
    }
