"""What a submission says (TaskSpec), what it leaves to the deployment (TaskDefaults), and
the checks it must pass before anything is written."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from app.kernel.bounds import MAX_RETRIES_MAX, PRIORITY_MAX, PRIORITY_MIN, check_within
from app.kernel.errors import InvalidInput
from app.services.tasks import types as task_types
from app.services.webhooks import outbound

QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
SIMULATE_KEYS: dict[str, type | tuple[type, ...]] = {
    "latency_ms": (int, float),
    "fail_attempts": int,
    "error": str,
    "input_tokens": int,
    "output_tokens": int,
    "fail_until": (int, float),
}


@dataclass
class TaskSpec:
    task_type: str | None = None
    operation: str | None = None
    # None: the type's queue (opsgraph's own types: llm)
    queue: str | None = None
    priority: int = 50
    input: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    webhook_url: str | None = None
    origin_instance: str = "api"
    origin_zone: str | None = None
    origin_tenant_id: str | None = None
    origin_reference: str | None = None
    max_retries: int | None = None
    result_ttl_seconds: int | None = None
    media: dict[str, Any] = field(default_factory=dict)
    workflow_id: uuid.UUID | None = None
    workflow_step_id: uuid.UUID | None = None
    # the task whose handler submitted this one (ctx.submit)
    parent_id: uuid.UUID | None = None
    # run later: at this time, or this many seconds from now (at most one of them)
    run_at: datetime | None = None
    delay_seconds: float | None = None
    # the client's key for this submission: the same key again answers this task
    # (app/services/tasks/idempotency.py)
    idempotency_key: str | None = None
    # at most `concurrency_limit` tasks of this key (within the tenant) run at once
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    # set by opsgraph's own services (pipeline stages), never from a client's input
    system: bool = False


KEY_MAX = 255


def check_key(key: str | None) -> None:
    """An idempotency key, when given, is 1-255 characters."""
    if key is not None and not 1 <= len(key) <= KEY_MAX:
        raise InvalidInput(f"idempotencyKey must be 1-{KEY_MAX} characters", field="idempotencyKey")


CONCURRENCY_LIMIT_MAX = 1000


def check_concurrency(key: str | None, limit: int | None) -> None:
    """A concurrency key comes with its limit (1-1000), and a limit with its key."""
    if key is None and limit is None:
        return
    if key is None or not 1 <= len(key) <= KEY_MAX:
        raise InvalidInput(
            f"a concurrency limit needs a concurrencyKey of 1-{KEY_MAX} characters",
            field="concurrencyKey",
        )
    if limit is None:
        raise InvalidInput("a concurrency key needs its concurrencyLimit", field="concurrencyLimit")
    check_within(limit, 1, CONCURRENCY_LIMIT_MAX, field="concurrencyLimit")


@dataclass(frozen=True)
class Valid:
    """A submission that passed every check, with what it left to its type and defaults."""

    task_type: str
    operation: str | None
    queue: str
    max_retries: int
    # when it is to run (None: now)
    run_at: datetime | None = None
    # the submission's concurrency key, or the one its type declares (read from its input)
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    # its type's rate limit ("10/s") and the key it counts under
    rate_key: str | None = None
    rate_limit: str | None = None


def validate(spec: TaskSpec, defaults: TaskDefaults, now: datetime | None = None) -> Valid:
    resolved = task_types.resolve(spec.task_type, spec.operation, system=spec.system)
    queue = spec.queue if spec.queue is not None else resolved.default_queue
    check_queue(queue, defaults, system=spec.system)
    check_within(spec.priority, PRIORITY_MIN, PRIORITY_MAX, field="priority")
    check_key(spec.idempotency_key)
    check_concurrency(spec.concurrency_key, spec.concurrency_limit)
    for name in ("input", "config", "metadata", "media"):
        if not isinstance(getattr(spec, name), dict):
            raise InvalidInput(f"{name} must be a JSON object", field=name)
    if spec.webhook_url is not None:
        outbound.check_url(spec.webhook_url, allow_private=defaults.allow_private_webhooks)
    if spec.max_retries is not None:
        check_within(spec.max_retries, 0, MAX_RETRIES_MAX, field="maxRetries")
    if spec.result_ttl_seconds is not None and spec.result_ttl_seconds < 0:
        raise InvalidInput("resultTtlSeconds must not be negative", field="resultTtlSeconds")
    if not spec.origin_instance:
        raise InvalidInput("originInstance must not be empty", field="originInstance")
    simulate = spec.config.get("simulate")
    if simulate is not None:
        if not isinstance(simulate, dict):
            raise InvalidInput("config.simulate must be an object", field="config")
        for key, value in simulate.items():
            expected = SIMULATE_KEYS.get(key)
            if expected is None:
                raise InvalidInput(
                    f"config.simulate.{key} is unknown; known: {sorted(SIMULATE_KEYS)}",
                    field="config",
                )
            if not isinstance(value, expected) or isinstance(value, bool):
                raise InvalidInput(f"config.simulate.{key} has the wrong type", field="config")
        if simulate.get("error", "retryable") not in ("retryable", "fatal"):
            raise InvalidInput(
                "config.simulate.error must be 'retryable' or 'fatal'", field="config"
            )
    if resolved.task_type == "llm":
        assert resolved.operation is not None
        _validate_llm_input(resolved.operation, spec.input)
    resolved.check_input(spec.input)
    retries = spec.max_retries
    if retries is None and resolved.registered is not None:
        retries = resolved.registered.retries
    key, limit = spec.concurrency_key, spec.concurrency_limit
    declared = resolved.registered.concurrency if resolved.registered is not None else None
    if key is None and declared is not None:
        key, limit = _declared_key(resolved.task_type, declared, spec.input), declared["limit"]
    rate = resolved.registered.rate if resolved.registered is not None else None
    rate_key = None
    if rate is not None:
        path = rate.get("key")
        rate_key = (
            _declared_key(resolved.task_type, {"key": path.removeprefix("input.")}, spec.input)
            if path
            else resolved.task_type
        )
    return Valid(
        task_type=resolved.task_type,
        operation=resolved.operation,
        queue=queue,
        max_retries=defaults.max_retries if retries is None else retries,
        run_at=when(spec.run_at, spec.delay_seconds, defaults, now or datetime.now(UTC)),
        concurrency_key=key,
        concurrency_limit=limit,
        rate_key=rate_key,
        rate_limit=rate["limit"] if rate is not None else None,
    )


def _declared_key(task_type: str, declared: dict[str, Any], data: dict[str, Any]) -> str:
    """The concurrency key a type declares, read from the input: `<type>:<value>`."""
    value: Any = data
    for part in str(declared["key"]).split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None or isinstance(value, (dict, list)):
        raise InvalidInput(
            f"{task_type}'s limits are keyed by input.{declared['key']}: give it a value",
            field=f"input.{declared['key']}",
        )
    key = f"{task_type}:{value}"
    if len(key) > KEY_MAX:
        raise InvalidInput(
            f"input.{declared['key']} is too long for a concurrency key (at most {KEY_MAX})",
            field=f"input.{declared['key']}",
        )
    return key


def when(
    run_at: datetime | None,
    delay_seconds: float | None,
    defaults: TaskDefaults,
    now: datetime,
    *,
    fields: tuple[str, str] = ("runAt", "delaySeconds"),
) -> datetime | None:
    """When a task (or a workflow) is to run: `runAt` or now + `delaySeconds`, None for now.
    A time in the past runs now; one further ahead than the deployment allows is refused
    naming the field (`fields`: how the caller spells the two)."""
    at_field, delay_field = fields
    if run_at is not None and delay_seconds is not None:
        raise InvalidInput(f"give {at_field} or {delay_field}, not both", field=delay_field)
    if delay_seconds is not None:
        check_within(delay_seconds, 0, defaults.max_delay_seconds, field=delay_field)
        return now + timedelta(seconds=delay_seconds)
    if run_at is None:
        return None
    if run_at.tzinfo is None:
        raise InvalidInput(f"{at_field} needs a time zone (an ISO 8601 offset)", field=at_field)
    if run_at > now + timedelta(seconds=defaults.max_delay_seconds):
        days = defaults.max_delay_seconds / 86_400
        raise InvalidInput(f"{at_field} is more than {days:g} days ahead", field=at_field)
    return run_at


def check_queue(
    queue: str, defaults: TaskDefaults, *, field: str = "queue", system: bool = False
) -> None:
    """The one check of a queue a submission names: its name, and that a client's task never
    goes to a queue of opsgraph's own (the camera pipeline's stages run there, on workers that
    read the cameras' files)."""
    if not QUEUE_NAME.match(queue):
        raise InvalidInput("queue must be 1-64 of A-Z a-z 0-9 _ . : -", field=field)
    if not system and queue in defaults.reserved_queues:
        raise InvalidInput(
            f"queue {queue!r} runs opsgraph's own tasks only; submit to another queue",
            field=field,
            code="RESERVED_QUEUE",
        )


def _validate_llm_input(operation: str, data: dict[str, Any]) -> None:
    if operation == "chat_completion":
        has_messages = isinstance(data.get("messages"), list)
        if not has_messages and not isinstance(data.get("prompt"), str):
            raise InvalidInput(
                "a chat_completion needs input.messages (a list) or input.prompt (a string)",
                field="input",
            )
    elif not isinstance(data.get("input", data.get("text")), str | list):
        raise InvalidInput(
            "a generate_embedding needs input.input (a string or a list)", field="input"
        )


@dataclass(frozen=True)
class TaskDefaults:
    """What a submission does not say: the deployment's settings."""

    max_retries: int = 3
    result_ttl_seconds: int = 3600
    allow_private_webhooks: bool = False
    # queues only opsgraph's own tasks use (Settings.reserved_queues: the pipeline's and any
    # the deployment adds); these are the pipeline's default names
    reserved_queues: frozenset[str] = frozenset(
        {"detection_queue", "enrichment_queue", "analysis_queue"}
    )
    # how far ahead a task may be submitted to run (OPSGRAPH_MAX_DELAY_SECONDS)
    max_delay_seconds: float = 365 * 86_400
    # how long an idempotency key answers with what it made (OPSGRAPH_IDEMPOTENCY_TTL)
    idempotency_ttl_seconds: float = 86_400
    # QUEUED tasks a tenant may have (OPSGRAPH_MAX_QUEUED_PER_TENANT; None: no cap)
    max_queued_per_tenant: int | None = None
