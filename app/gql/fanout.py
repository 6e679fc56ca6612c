"""Shared execution of identical subscriptions.

Subscribers with the same document, variables, role and tenant would receive the very same
results, so the operation runs once per process and its results fan out to each subscriber:
framed once and written straight to the sockets that can take them (see direct.py), else
through the subscriber's bounded buffer (the oldest dropped when a client falls behind).

Two kinds: event streams (`taskUpdated` by queue or status) deliver what happens after one
subscribes; snapshot streams (`taskUpdated(id)`, `queueStats`, `llmStats`, `workflowUpdated`)
start with the current state, so a subscriber joining a running stream first gets its latest
result, which is that state."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from contextlib import aclosing, suppress
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import strawberry
from graphql import (
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    parse,
)
from graphql.error import GraphQLError as CoreGraphQLError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType as StrawberryOperationType

from app.gql.context import Context
from app.gql.direct import DirectSocket, text_frame
from app.gql.hygiene import variable_problem

log = logging.getLogger(__name__)

EVENT_FIELDS = frozenset({"taskUpdated"})  # by id, taskUpdated is a snapshot stream
SNAPSHOT_FIELDS = frozenset({"queueStats", "llmStats", "workflowUpdated"})
_END = object()
Key = tuple[str, str, str | None, str, str | None]
Opener = Callable[[], Awaitable[AsyncGenerator[Any, None]]]


@dataclass(frozen=True)
class Shape:
    root: str | None  # the root field of a lone subscription operation
    id_variable: str | None  # the variable its `id` argument is bound to
    literal_id: bool  # an `id` written in the document


@lru_cache(maxsize=256)
def _shape(query: str) -> Shape:
    none = Shape(None, None, False)
    try:
        document = parse(query)
    except CoreGraphQLError:
        return none
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(ops) != 1 or ops[0].operation != OperationType.SUBSCRIPTION:
        return none
    fields = ops[0].selection_set.selections
    if len(fields) != 1 or not isinstance(fields[0], FieldNode):
        return none
    field = fields[0]
    for arg in field.arguments or ():
        if arg.name.value == "id":
            if isinstance(arg.value, VariableNode):
                return Shape(field.name.value, arg.value.name.value, False)
            return Shape(field.name.value, None, True)
    return Shape(field.name.value, None, False)


def share_key(
    query: str | None, variables: dict[str, Any] | None, context: Any, operation: str | None
) -> tuple[Key, bool] | None:
    """The key under which a subscription is shared and whether it is a snapshot stream, or
    None when it runs on its own."""
    if not query or not isinstance(context, Context) or context.principal is None:
        return None
    shape = _shape(query)
    by_id = shape.literal_id or bool(shape.id_variable and (variables or {}).get(shape.id_variable))
    if shape.root in EVENT_FIELDS:
        snapshot = by_id
    elif shape.root in SNAPSHOT_FIELDS:
        snapshot = True
    else:
        return None
    principal = context.principal
    encoded = json.dumps(variables or {}, sort_keys=True, default=str)
    return (query, encoded, operation, principal.role, principal.tenant_id), snapshot


def payload_json(result: Any) -> str | None:
    """A result's `next` payload as JSON text, or None when it goes the ordinary way (a result
    with errors is formatted by Strawberry)."""
    if not isinstance(result, ExecutionResult) or result.errors:
        return None
    payload: dict[str, Any] = {"data": result.data}
    if result.extensions:
        payload["extensions"] = result.extensions
    return json.dumps(payload, separators=(",", ":"))


def next_text(op_id: str, payload: str) -> str:
    """graphql-transport-ws's `next` message around an encoded payload."""
    return f'{{"id":{json.dumps(op_id)},"type":"next","payload":{payload}}}'


class _Subscriber:
    def __init__(self, maxsize: int) -> None:
        self.items: deque[Any] = deque()
        self.maxsize = maxsize
        self.ready = asyncio.Event()

    def offer(self, item: Any) -> None:
        if len(self.items) >= self.maxsize and item is not _END:
            self.items.popleft()
        self.items.append(item)
        self.ready.set()

    async def get(self) -> Any:
        while not self.items:
            self.ready.clear()
            await self.ready.wait()
        return self.items.popleft()


@dataclass
class Figures:
    """This process's shared-subscription deliveries, for /metrics."""

    direct: int = 0  # results written straight to a socket
    queued: int = 0  # results that went through a subscriber's buffer


FIGURES = Figures()


class _Direct(_Subscriber):
    """A subscriber whose results are written straight to its socket (see direct.py) while it
    keeps up; what cannot be written now queues (bounded, as any subscriber's) and goes the
    ordinary way, after which direct writes resume, in order."""

    def __init__(
        self, maxsize: int, socket: DirectSocket, op_id: str, alive: Callable[[], bool]
    ) -> None:
        super().__init__(maxsize)
        self.socket = socket
        self.op_id = op_id
        self.alive = alive
        # an earlier result is on its way the ordinary way: a direct write would overtake it
        self.sending = False

    def offer_framed(self, item: Any, frame: bytes | None) -> None:
        if (
            frame is not None
            and not self.items
            and not self.sending
            and self.alive()
            and self.socket.try_write(frame)
        ):
            FIGURES.direct += 1
            return
        FIGURES.queued += 1
        self.offer(item)


class Frames:
    """One result's frames, built once per operation id (most clients use the same ids)."""

    def __init__(self, result: Any) -> None:
        self.result = result
        self._encoded = False
        self._payload: str | None = None
        self._frames: dict[str, bytes] = {}

    def frame(self, op_id: str) -> bytes | None:
        if not self._encoded:
            self._payload, self._encoded = payload_json(self.result), True
        if self._payload is None:
            return None
        frame = self._frames.get(op_id)
        if frame is None:
            frame = self._frames[op_id] = text_frame(next_text(op_id, self._payload))
        return frame


def _deliver(sub: _Subscriber, frames: Frames) -> None:
    if isinstance(sub, _Direct):
        sub.offer_framed(frames.result, frames.frame(sub.op_id))
    else:
        FIGURES.queued += 1
        sub.offer(frames.result)


class SharedStream:
    def __init__(self, buffer: int, *, replay: bool) -> None:
        self.subscribers: set[_Subscriber] = set()
        self.on_empty: Callable[[], None] = lambda: None
        self._buffer = buffer
        self._replay = replay
        self._last: Frames | None = None
        self._pump: asyncio.Task[None] | None = None

    def start(self, open_stream: Opener) -> None:
        self._pump = asyncio.create_task(self._run(open_stream), name="opsgraph-shared-stream")

    async def _run(self, open_stream: Opener) -> None:
        try:
            source = await open_stream()
            async with aclosing(source):
                async for result in source:
                    frames = Frames(result)
                    if self._replay:
                        self._last = frames
                    for sub in list(self.subscribers):
                        _deliver(sub, frames)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("shared subscription stream failed")
        finally:
            self.on_empty()
            for sub in list(self.subscribers):
                sub.offer(_END)

    def join(self) -> Joined:
        return Joined(self)

    async def iterate(self, sub: _Subscriber) -> AsyncGenerator[Any, None]:
        self.subscribers.add(sub)
        if self._last is not None:
            _deliver(sub, self._last)  # a snapshot stream's latest result is the current state
        try:
            while True:
                item = await sub.get()
                if item is _END:
                    return
                yield item
        finally:
            self.subscribers.discard(sub)
            if not self.subscribers and self._pump is not None:
                self.on_empty()
                self._pump.cancel()
                with suppress(asyncio.CancelledError, Exception):
                    await self._pump

    @property
    def buffer(self) -> int:
        return self._buffer


class Joined:
    """One subscriber of a shared stream. Strawberry's handler iterates it; ours, on a socket
    that can be written directly, has it `deliver` instead (see view.py)."""

    def __init__(self, shared: SharedStream) -> None:
        self._shared = shared
        self._items: AsyncGenerator[Any, None] | None = None

    def __aiter__(self) -> Joined:
        return self

    async def __anext__(self) -> Any:
        if self._items is None:
            self._items = self._shared.iterate(_Subscriber(self._shared.buffer))
        return await self._items.__anext__()

    async def aclose(self) -> None:
        if self._items is not None:
            await self._items.aclose()

    async def deliver(
        self,
        op_id: str,
        socket: DirectSocket,
        send_next: Callable[[Any], Awaitable[None]],
        alive: Callable[[], bool],
    ) -> None:
        """Until the stream ends: results go straight to `socket`, and `send_next` sends what
        could not go that way."""
        sub = _Direct(self._shared.buffer, socket, op_id, alive)
        self._items = self._shared.iterate(sub)
        async for item in self._items:
            sub.sending = True
            try:
                await send_next(item)
            finally:
                sub.sending = False


async def _refusal(error: GraphQLError) -> AsyncGenerator[Any, None]:
    """A subscription refused before it starts: one result carrying the error."""
    yield ExecutionResult(data=None, errors=[error])


class SharingSchema(strawberry.Schema):
    """A Schema whose `stream` (what websocket subscriptions run) shares identical
    subscriptions among the subscribers of this process."""

    def __init__(self, *args: Any, subscriber_buffer: int = 64, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shared: dict[Key, SharedStream] = {}
        self.subscriber_buffer = subscriber_buffer

    async def stream(  # type: ignore[override]
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[StrawberryOperationType] | None = None,
    ) -> AsyncGenerator[Any, None] | Joined:
        refused = variable_problem(variable_values or {})
        if refused is not None:
            return _refusal(refused)
        shareable = share_key(query, variable_values, context_value, operation_name)
        if shareable is None:
            return await super().stream(
                query,
                variable_values,
                context_value,
                root_value,
                operation_name,
                operation_extensions,
                allowed_operation_types,
            )
        key, snapshot = shareable
        shared = self.shared.get(key)
        if shared is None:
            assert isinstance(context_value, Context)
            # The shared run has its own context: no tie to the first subscriber's socket.
            own = Context(state=context_value.state, principal=context_value.principal)

            async def open_stream() -> AsyncGenerator[Any, None]:
                return await strawberry.Schema.stream(
                    self,
                    query,
                    variable_values,
                    own,
                    root_value,
                    operation_name,
                    operation_extensions,
                    allowed_operation_types,
                )

            shared = self._open(key, snapshot, open_stream)
        return shared.join()

    def _open(self, key: Key, snapshot: bool, open_stream: Opener) -> SharedStream:
        shared = SharedStream(self.subscriber_buffer, replay=snapshot)

        def forget() -> None:
            if self.shared.get(key) is shared:
                del self.shared[key]

        shared.on_empty = forget
        self.shared[key] = shared
        shared.start(open_stream)
        return shared
