"""Shared execution of identical event subscriptions.

Every subscriber of `taskUpdated(queue/status filter)` with the same document, variables, role
and tenant would receive the very same results, so the operation runs once per process and its
results fan out to each subscriber's bounded buffer (the oldest result is dropped when a
client falls behind). Subscriptions that start with a snapshot of current state (by id, queue
or LLM stats, workflows) run per subscriber as usual."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from contextlib import aclosing, suppress
from functools import lru_cache
from typing import Any

import strawberry
from graphql import FieldNode, OperationDefinitionNode, OperationType, VariableNode, parse
from graphql.error import GraphQLError as CoreGraphQLError
from strawberry.types.graphql import OperationType as StrawberryOperationType

from app.gql.context import Context

log = logging.getLogger(__name__)

SHAREABLE_FIELDS = frozenset({"taskUpdated"})
_END = object()
Key = tuple[str, str, str | None, str, str | None]


@lru_cache(maxsize=256)
def _shape(query: str) -> tuple[bool, str | None, bool]:
    """(shareable root field, name of the variable bound to `id`, literal `id` given)."""
    try:
        document = parse(query)
    except CoreGraphQLError:
        return False, None, False
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(ops) != 1 or ops[0].operation != OperationType.SUBSCRIPTION:
        return False, None, False
    fields = ops[0].selection_set.selections
    if len(fields) != 1 or not isinstance(fields[0], FieldNode):
        return False, None, False
    field = fields[0]
    if field.name.value not in SHAREABLE_FIELDS:
        return False, None, False
    for arg in field.arguments or ():
        if arg.name.value == "id":
            if isinstance(arg.value, VariableNode):
                return True, arg.value.name.value, False
            return True, None, True
    return True, None, False


def share_key(
    query: str | None, variables: dict[str, Any] | None, context: Any, operation: str | None
) -> Key | None:
    if not query or not isinstance(context, Context) or context.principal is None:
        return None
    shareable, id_variable, literal_id = _shape(query)
    if not shareable or literal_id or (id_variable and (variables or {}).get(id_variable)):
        return None
    principal = context.principal
    return (
        query,
        json.dumps(variables or {}, sort_keys=True, default=str),
        operation,
        principal.role,
        principal.tenant_id,
    )


class _Subscriber:
    def __init__(self, maxsize: int) -> None:
        self.items: deque[Any] = deque()
        self.maxsize = maxsize
        self.ready = asyncio.Event()
        self.dropped = 0

    def offer(self, item: Any) -> None:
        if len(self.items) >= self.maxsize and item is not _END:
            self.items.popleft()
            self.dropped += 1
        self.items.append(item)
        self.ready.set()

    async def get(self) -> Any:
        while not self.items:
            self.ready.clear()
            await self.ready.wait()
        return self.items.popleft()


class SharedStream:
    def __init__(self, buffer: int) -> None:
        self.subscribers: set[_Subscriber] = set()
        self.on_empty: Callable[[], None] = lambda: None
        self._buffer = buffer
        self._pump: asyncio.Task[None] | None = None

    def start(self, open_stream: Callable[[], Awaitable[AsyncGenerator[Any, None]]]) -> None:
        self._pump = asyncio.create_task(self._run(open_stream), name="opsgraph-shared-stream")

    async def _run(self, open_stream: Callable[[], Awaitable[AsyncGenerator[Any, None]]]) -> None:
        try:
            source = await open_stream()
            async with aclosing(source):
                async for result in source:
                    for sub in list(self.subscribers):
                        sub.offer(result)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("shared subscription stream failed")
        finally:
            self.on_empty()
            for sub in list(self.subscribers):
                sub.offer(_END)

    async def join(self) -> AsyncGenerator[Any, None]:
        sub = _Subscriber(self._buffer)
        self.subscribers.add(sub)
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


class SharingSchema(strawberry.Schema):
    """A Schema whose websocket `stream` shares identical event subscriptions."""

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
    ) -> AsyncGenerator[Any, None]:
        key = share_key(query, variable_values, context_value, operation_name)
        if key is None:
            return await super().stream(
                query,
                variable_values,
                context_value,
                root_value,
                operation_name,
                operation_extensions,
                allowed_operation_types,
            )
        shared = self.shared.get(key)
        if shared is None:
            assert isinstance(context_value, Context)
            shared = self._open(
                key,
                query,
                variable_values,
                context_value,
                root_value,
                operation_name,
                operation_extensions,
                allowed_operation_types,
            )
        return shared.join()

    def _open(
        self,
        key: Key,
        query: str | None,
        variable_values: dict[str, Any] | None,
        context: Context,
        root_value: Any | None,
        operation_name: str | None,
        operation_extensions: dict[str, Any] | None,
        allowed_operation_types: Iterable[StrawberryOperationType] | None,
    ) -> SharedStream:
        shared = SharedStream(self.subscriber_buffer)

        def forget() -> None:
            if self.shared.get(key) is shared:
                del self.shared[key]

        shared.on_empty = forget
        # The shared run has its own context: no tie to the first subscriber's socket.
        own = Context(state=context.state, principal=context.principal)

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

        self.shared[key] = shared
        shared.start(open_stream)
        return shared

    @property
    def shared_subscribers(self) -> int:
        return sum(len(s.subscribers) for s in self.shared.values())
