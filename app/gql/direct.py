"""Direct websocket writes for fanned-out subscription results.

A result shared by 1,000 subscribers used to travel 1,000 times through Strawberry's
protocol handler, Starlette's WebSocket and uvicorn's send, each on its own task (~55 µs a
subscriber, one after another). Here the shared stream frames the message once (a server's
frames are unmasked and, without compression, the same bytes for the same text) and writes
those bytes to each socket's transport in one loop. Only when that is safe: a uvicorn
websockets-sansio connection, open, writable (not paused by flow control), no extension
negotiated. Anything else, and a subscriber with a backlog, takes the ordinary path.

`DirectSockets` is the outermost ASGI layer: there `send` is still uvicorn's own, and it
leaves the connection's writer in the scope for the subscription handler to find."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from websockets.frames import Frame, Opcode
from websockets.protocol import State

SCOPE_KEY = "opsgraph.direct_socket"


class DirectSocket:
    """A websocket connection's transport, written to without awaiting."""

    def __init__(self, protocol: Any) -> None:
        self._p = protocol

    def try_write(self, frame: bytes) -> bool:
        """Write a ready frame now if the connection can take it; False leaves it to the
        ordinary path (which waits for the socket)."""
        p = self._p
        if (
            p.disconnected
            or p.close_sent
            or not p.handshake_complete
            or not p.writable.is_set()
            or p.conn.state is not State.OPEN
            or p.conn.extensions
            or p.transport.is_closing()
        ):
            return False
        p.transport.write(frame)
        return True


def text_frame(text: str) -> bytes:
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])


def _uvicorn_sansio(send: Send) -> Any | None:
    protocol = getattr(send, "__self__", None)
    needed = ("conn", "transport", "writable", "disconnected", "close_sent", "handshake_complete")
    if protocol is None or not all(hasattr(protocol, a) for a in needed):
        return None
    return protocol


class DirectSockets:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            protocol = _uvicorn_sansio(send)
            if protocol is not None:
                scope[SCOPE_KEY] = DirectSocket(protocol)
        await self.app(scope, receive, send)


def direct_socket(scope: Scope) -> DirectSocket | None:
    found = scope.get(SCOPE_KEY)
    return found if isinstance(found, DirectSocket) else None
