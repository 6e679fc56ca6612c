"""Shared subscription results written straight to a socket never overtake the ones that went
the ordinary way: the rule that decides between the two paths, driven step by step through a
shared stream's own source. (The socket here is a stand-in with uvicorn's two states, writable
or paused; the end-to-end test in test_e2e_tasks.py runs the direct path on real sockets.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import suppress
from typing import Any, cast

from strawberry.types import ExecutionResult

from app.gql.fanout import Joined, SharedStream
from tests.waiting import wait_for


class Socket:
    def __init__(self) -> None:
        self.writable = False
        self.frames: list[bytes] = []

    def try_write(self, frame: bytes) -> bool:
        if self.writable:
            self.frames.append(frame)
        return self.writable


def result(n: int) -> ExecutionResult:
    return ExecutionResult(data={"n": n}, errors=None)


async def test_a_direct_write_waits_for_what_is_already_on_its_way() -> None:
    feed: asyncio.Queue[ExecutionResult] = asyncio.Queue()
    handed_out: list[int] = []  # results the stream has given to every subscriber
    on_its_way: list[int] = []  # results the ordinary path began to send
    sent: list[Any] = []
    release = asyncio.Event()

    async def source() -> AsyncGenerator[ExecutionResult, None]:
        while True:
            item = await feed.get()
            yield item
            # the stream asks for the next result once it has handed this one out
            handed_out.append(cast(dict[str, int], item.data)["n"])

    async def open_stream() -> AsyncGenerator[ExecutionResult, None]:
        return source()

    async def send_next(item: Any) -> None:  # the ordinary path, slow right now
        on_its_way.append(item.data["n"])
        await release.wait()
        sent.append(item)

    async def publish(n: int) -> None:
        feed.put_nowait(result(n))
        await wait_for(lambda: n in handed_out, what=f"result {n} handed out")

    shared = SharedStream(8, replay=False)
    shared.start(open_stream)
    socket = Socket()
    delivery = asyncio.create_task(
        Joined(shared).deliver("7", cast(Any, socket), send_next, lambda: True)
    )
    await wait_for(lambda: shared.subscribers, what="the socket's subscriber to join")

    # given a result that met a paused socket and is being sent the ordinary way
    await publish(1)
    await wait_for(lambda: on_its_way == [1], what="result 1 on its way the ordinary way")
    # when the socket can take writes again and the next result comes
    socket.writable = True
    await publish(2)
    # then it is not written ahead of the first: it queues behind it
    assert socket.frames == []
    release.set()
    await wait_for(lambda: len(sent) == 2, what="both results sent the ordinary way")
    assert [r.data["n"] for r in sent] == [1, 2]
    # and once nothing is pending, results go straight to the socket, framed with their id
    await publish(3)
    assert len(socket.frames) == 1
    assert b'"id":"7","type":"next","payload":{"data":{"n":3}}' in socket.frames[0]
    assert on_its_way == [1, 2]
    delivery.cancel()
    with suppress(asyncio.CancelledError):
        await delivery
