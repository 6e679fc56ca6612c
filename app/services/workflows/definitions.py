"""Workflow definitions: statuses, the shape of a workflow and its steps, and the checks a
definition must pass (each failure names the offending step) before anything is stored."""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from app.kernel.bounds import MAX_RETRIES_MAX, PRIORITY_MAX, PRIORITY_MIN, check_within
from app.kernel.errors import InvalidInput
from app.services.tasks import specs as task_specs
from app.services.tasks import types as task_types
from app.services.webhooks import outbound

MAX_STEPS = 1000


class WorkflowStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class StepStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


ACTIVE = frozenset({WorkflowStatus.PENDING, WorkflowStatus.RUNNING, WorkflowStatus.PAUSED})
SCHEDULING = frozenset({WorkflowStatus.PENDING, WorkflowStatus.RUNNING})


@dataclass
class InputMapping:
    from_step: str
    path: str
    to: str

    def as_dict(self) -> dict[str, str]:
        return {"from_step": self.from_step, "path": self.path, "to": self.to}


class StepKind(StrEnum):
    TASK = "TASK"  # its task runs it
    SLEEP = "SLEEP"  # waits for a time (sleep_seconds or until)
    APPROVAL = "APPROVAL"  # waits for an operator's approveStep / rejectStep
    SIGNAL = "SIGNAL"  # waits for signalWorkflow(name), whose payload is its result


WAITING = frozenset({StepKind.SLEEP, StepKind.APPROVAL, StepKind.SIGNAL})


class Decision(StrEnum):
    APPROVE = "APPROVE"
    REJECT = "REJECT"


@dataclass
class StepSpec:
    step_id: str
    task_type: str | None = None
    operation: str | None = None
    queue: str | None = None
    dependencies: list[str] = field(default_factory=list)
    input_mappings: list[dict[str, Any]] = field(default_factory=list)
    input: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    max_retries: int = 0
    kind: StepKind = StepKind.TASK
    sleep_seconds: float | None = None
    until: datetime | None = None
    signal: str | None = None
    timeout_seconds: float | None = None
    # what an approval's timeout decides (None: the timeout fails the step)
    default_decision: Decision | None = None

    def wait(self) -> dict[str, Any] | None:
        """What a waiting step waits for, as stored (None for a task step)."""
        if self.kind == StepKind.TASK:
            return None
        return {
            "sleep_seconds": self.sleep_seconds,
            "until": self.until.isoformat() if self.until else None,
            "signal": self.signal,
            "timeout_seconds": self.timeout_seconds,
            "default_decision": self.default_decision.value if self.default_decision else None,
        }


@dataclass
class WorkflowSpec:
    name: str
    steps: list[StepSpec]
    description: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    webhook_url: str | None = None
    origin_instance: str = "api"
    origin_zone: str | None = None
    origin_tenant_id: str | None = None
    origin_reference: str | None = None
    final_step_id: str | None = None
    priority: int = 50
    # start later: at this time, or this many seconds from now (its first steps wait)
    run_at: datetime | None = None
    delay_seconds: float | None = None
    # the client's key: the same key again answers this workflow (tasks/idempotency.py)
    idempotency_key: str | None = None


# --- validation ---------------------------------------------------------------------------


def mappings(step: StepSpec, index: int) -> list[InputMapping]:
    out = []
    for j, raw in enumerate(step.input_mappings):
        where = f"steps[{index}].input_mappings[{j}]"
        if not isinstance(raw, dict):
            raise InvalidInput(
                f"step {step.step_id!r}: an input mapping must be an object", field=where
            )
        source = raw.get("from_step", raw.get("step"))
        target = raw.get("to", raw.get("field"))
        path = raw.get("path", "")
        if not isinstance(source, str) or not source:
            raise InvalidInput(
                f"step {step.step_id!r}: input mapping {j} needs 'from_step'", field=where
            )
        if not isinstance(target, str) or not target:
            raise InvalidInput(f"step {step.step_id!r}: input mapping {j} needs 'to'", field=where)
        if not isinstance(path, str):
            raise InvalidInput(
                f"step {step.step_id!r}: input mapping {j}: 'path' must be a string", field=where
            )
        out.append(InputMapping(from_step=source, path=path, to=target))
    return out


def _check_wait(step: StepSpec, i: int) -> None:
    """A waiting step's own fields: what it waits for, its timeout, its default decision."""
    where = f"steps[{i}]"
    name = f"step {step.step_id!r}"
    if step.task_type is not None:
        raise InvalidInput(
            f"{name}: a {step.kind} step runs no task; leave task_type out",
            field=f"{where}.task_type",
        )
    if step.timeout_seconds is not None and step.timeout_seconds <= 0:
        raise InvalidInput(
            f"{name}: timeout_seconds must be positive", field=f"{where}.timeout_seconds"
        )
    if step.kind == StepKind.SLEEP:
        if (step.sleep_seconds is None) == (step.until is None):
            raise InvalidInput(
                f"{name}: a SLEEP step needs sleep_seconds or until", field=f"{where}.sleep_seconds"
            )
        if step.sleep_seconds is not None and not 0 <= step.sleep_seconds <= 366 * 86_400:
            raise InvalidInput(
                f"{name}: sleep_seconds must be 0 to a year", field=f"{where}.sleep_seconds"
            )
        if step.until is not None and step.until.tzinfo is None:
            raise InvalidInput(f"{name}: until needs a time zone", field=f"{where}.until")
    if step.kind == StepKind.SIGNAL and not (step.signal and len(step.signal) <= 255):
        raise InvalidInput(f"{name}: a SIGNAL step needs a signal name", field=f"{where}.signal")
    if step.default_decision is not None and step.kind != StepKind.APPROVAL:
        raise InvalidInput(
            f"{name}: only an APPROVAL step takes a default decision",
            field=f"{where}.default_decision",
        )


def topological_order(steps: Sequence[StepSpec]) -> list[str]:
    """Kahn's algorithm, ties broken by declaration order; raises naming a cycle."""
    index = {s.step_id: i for i, s in enumerate(steps)}
    indegree = {s.step_id: len(set(s.dependencies)) for s in steps}
    children: dict[str, list[str]] = {s.step_id: [] for s in steps}
    for s in steps:
        for dep in set(s.dependencies):
            children[dep].append(s.step_id)
    ready = [(index[sid], sid) for sid, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, sid = heapq.heappop(ready)
        order.append(sid)
        for child in children[sid]:
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(ready, (index[child], child))
    if len(order) < len(steps):
        stuck = {sid for sid, d in indegree.items() if d > 0}
        cycle = _find_cycle(steps, stuck)
        first = min(cycle, key=lambda sid: index[sid])
        at = cycle.index(first)
        cycle = cycle[at:] + cycle[:at]
        raise InvalidInput(
            f"steps form a cycle (each depends on the next): {' -> '.join([*cycle, first])}",
            field=f"steps[{index[first]}].dependencies",
        )
    return order


def _find_cycle(steps: Sequence[StepSpec], stuck: set[str]) -> list[str]:
    deps = {s.step_id: [d for d in s.dependencies if d in stuck] for s in steps}
    start = next(s.step_id for s in steps if s.step_id in stuck)
    path: list[str] = []
    seen: dict[str, int] = {}
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = deps[node][0]
    return list(reversed(path[seen[node] :]))


def validate(spec: WorkflowSpec, *, defaults: task_specs.TaskDefaults) -> list[str]:
    """Check the definition; return the step ids in topological order."""
    if not spec.name or not spec.name.strip():
        raise InvalidInput("a workflow needs a name", field="name")
    if not spec.steps:
        raise InvalidInput("a workflow needs at least one step", field="steps")
    if len(spec.steps) > MAX_STEPS:
        raise InvalidInput(f"at most {MAX_STEPS} steps", field="steps")
    check_within(spec.priority, PRIORITY_MIN, PRIORITY_MAX, field="priority")
    task_specs.check_key(spec.idempotency_key)
    if spec.webhook_url is not None:
        outbound.check_url(
            spec.webhook_url, allow_private=defaults.allow_private_webhooks, field="webhook_url"
        )
    seen: set[str] = set()
    for i, step in enumerate(spec.steps):
        if not step.step_id or len(step.step_id) > 255:
            raise InvalidInput(
                f"step {i} needs a step_id (1-255 characters)", field=f"steps[{i}].step_id"
            )
        if step.step_id in seen:
            raise InvalidInput(f"duplicate step id {step.step_id!r}", field=f"steps[{i}].step_id")
        seen.add(step.step_id)
        if step.kind == StepKind.TASK:
            try:
                task_types.resolve(step.task_type, step.operation)
            except InvalidInput as exc:
                raise InvalidInput(
                    f"step {step.step_id!r}: {exc.message}", field=f"steps[{i}].task_type"
                ) from exc
        else:
            _check_wait(step, i)
        check_within(
            step.max_retries,
            0,
            MAX_RETRIES_MAX,
            field=f"steps[{i}].max_retries",
            name=f"step {step.step_id!r}: max_retries",
        )
        if step.queue is not None:
            try:
                task_specs.check_queue(step.queue, defaults, field=f"steps[{i}].queue")
            except InvalidInput as exc:
                raise InvalidInput(
                    f"step {step.step_id!r}: {exc.message}", field=exc.field, code=exc.code
                ) from exc
    for i, step in enumerate(spec.steps):
        for dep in step.dependencies:
            if dep not in seen:
                raise InvalidInput(
                    f"step {step.step_id!r} depends on unknown step {dep!r}",
                    field=f"steps[{i}].dependencies",
                )
            if dep == step.step_id:
                raise InvalidInput(
                    f"steps form a cycle: {dep} -> {dep}", field=f"steps[{i}].dependencies"
                )
    order = topological_order(spec.steps)
    by_id = {s.step_id: s for s in spec.steps}
    ancestors: dict[str, set[str]] = {}
    for sid in order:
        found: set[str] = set()
        for dep in by_id[sid].dependencies:
            found |= {dep} | ancestors[dep]
        ancestors[sid] = found
    for i, step in enumerate(spec.steps):
        for m in mappings(step, i):
            if m.from_step not in ancestors[step.step_id]:
                raise InvalidInput(
                    f"step {step.step_id!r} maps input from {m.from_step!r}, which is not one "
                    "of its ancestors",
                    field=f"steps[{i}].input_mappings",
                )
    if spec.final_step_id is not None and spec.final_step_id not in seen:
        raise InvalidInput(
            f"final_step_id {spec.final_step_id!r} is not a step", field="final_step_id"
        )
    return order
