"""Shared subscription results written straight to a socket never overtake the ones that went
the ordinary way: the rule that decides between the two paths, driven step by step. (The
socket here is a stand-in with uvicorn's two states, writable or paused; the end-to-end
test in test_e2e_tasks.py runs the direct path on real sockets.)"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from strawberry.types import ExecutionResult

from app.gql.fanout import Frames, Joined, SharedStream, _deliver


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
    shared = SharedStream(8, replay=False)
    socket = Socket()
    sent: list[Any] = []
    release = asyncio.Event()

    async def send_next(item: Any) -> None:  # the ordinary path, slow right now
        await release.wait()
        sent.append(item)

    delivery = asyncio.create_task(
        Joined(shared).deliver("7", cast(Any, socket), send_next, lambda: True)
    )
    await asyncio.sleep(0)

    def publish(n: int) -> None:
        for sub in list(shared.subscribers):
            _deliver(sub, Frames(result(n)))

    # given a result that met a paused socket and is being sent the ordinary way
    publish(1)
    await asyncio.sleep(0)
    # when the socket can take writes again and the next result comes
    socket.writable = True
    publish(2)
    # then it is not written ahead of the first: it queues behind it
    assert socket.frames == []
    release.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert [r.data["n"] for r in sent] == [1, 2]
    # and once nothing is pending, results go straight to the socket, framed with their id
    publish(3)
    assert len(socket.frames) == 1
    assert b'"id":"7","type":"next","payload":{"data":{"n":3}}' in socket.frames[0]
    delivery.cancel()
