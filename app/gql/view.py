"""The /graphql endpoint: Strawberry's ASGI view with authentication in front of it.

HTTP requests need credentials before anything executes (401 otherwise); GraphiQL's page
itself is open. Websockets authenticate at `connection_init` (or on the upgrade headers)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketState
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.schema import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)

from app.auth.principals import Principal, Unauthenticated
from app.config import Settings
from app.edge.hygiene import TOO_DEEP
from app.edge.state import AppState
from app.gql.context import Context
from app.gql.direct import direct_socket
from app.gql.fanout import Joined, next_text

PRINCIPAL = "opsgraph.principal"
log = logging.getLogger(__name__)


def app_state(scope: Scope) -> AppState:
    state = scope["state"]["app"]
    assert isinstance(state, AppState)
    return state


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws, with shared subscriptions delivered straight to the socket when
    it can take them (app/gql/fanout.py, app/gql/direct.py)."""

    async def _send_result_stream(
        self, operation: Operation[Context, None], result_source: Any
    ) -> None:
        request = self.context.request if isinstance(self.context, Context) else None
        socket = direct_socket(request.scope) if request is not None else None
        if isinstance(result_source, Joined) and socket is not None:

            def alive() -> bool:
                # a `complete` from the client ends the operation before its task stops
                return self.operations.get(operation.id) is operation and not operation.completed

            await result_source.deliver(operation.id, socket, operation.send_next, alive)
            return
        await super()._send_result_stream(operation, result_source)


class GraphQLView(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = TransportWSHandler

    # Encoded `next` payloads by the identity of their (shared) data: a result fanned out to
    # many subscribers is serialised once. Bounded; holds references so identities stay valid.
    PAYLOAD_CACHE = 256

    @property
    def graphql_ide_html(self) -> str:
        # GraphiQL from opsgraph's own files (app/console/static), never from a CDN: the page
        # is handed over where the app is assembled (app/main.py)
        return self._ide_html()

    def __init__(self, *args: Any, ide_html: Callable[[], str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ide_html = ide_html
        self._payloads: OrderedDict[tuple[int, int], tuple[Any, Any, str]] = OrderedDict()
        # One credential watcher per open websocket; each ends with its connection.
        self._watchers: set[asyncio.Task[None]] = set()

    def decode_json(self, data: str | bytes) -> object:
        try:
            return json.loads(data)
        except RecursionError:
            # deeper than the decoder goes (far past MAX_JSON_DEPTH): a client's error, 400
            # as for a body that is not JSON at all
            raise HTTPException(400, f"the request body {TOO_DEEP}") from None

    def encode_json(self, data: object) -> str | bytes:
        if isinstance(data, dict) and data.get("type") == "next":
            payload = data.get("payload")
            if isinstance(payload, dict) and "errors" not in payload and "data" in payload:
                return next_text(data["id"], self._payload_json(payload))
        return super().encode_json(data)

    def _payload_json(self, payload: dict[str, Any]) -> str:
        result, extensions = payload["data"], payload.get("extensions")
        key = (id(result), id(extensions))
        hit = self._payloads.get(key)
        if hit is not None and hit[0] is result and hit[1] is extensions:
            self._payloads.move_to_end(key)
            return hit[2]
        body = json.dumps(payload, separators=(",", ":"))
        self._payloads[key] = (result, extensions, body)
        if len(self._payloads) > self.PAYLOAD_CACHE:
            self._payloads.popitem(last=False)
        return body

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        return Context(
            state=app_state(request.scope),
            principal=request.scope.get(PRINCIPAL),
            request=request,
            response=response,
        )

    async def on_ws_connect(self, context: Context) -> None:
        params = context.connection_params or {}
        headers = {str(k).lower(): v for k, v in params.items() if isinstance(v, str)}
        upgrade = context.request.headers
        authorization = headers.get("authorization") or upgrade.get("authorization")
        api_key = headers.get("x-api-key") or upgrade.get("x-api-key")
        try:
            context.principal = await context.state.auth.authenticate(
                authorization=authorization, api_key=api_key
            )
        except Unauthenticated as exc:
            raise ConnectionRejectionError({"message": str(exc)}) from exc
        ws = context.request
        assert isinstance(ws, WebSocket)
        watcher = asyncio.create_task(
            _keep_authenticated(
                ws,
                context.state,
                authorization=authorization,
                api_key=api_key,
                expires_at=context.principal.expires_at,
            )
        )
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)


CREDENTIAL_EXPIRED = 4403


async def _keep_authenticated(
    ws: WebSocket,
    state: AppState,
    *,
    authorization: str | None,
    api_key: str | None,
    expires_at: float | None,
) -> None:
    """Re-check the connection's credential every `ws_reauth_seconds` (and at a token's
    expiry); close with 4403 once it no longer verifies (expired token, revoked key)."""
    interval = state.settings.ws_reauth_seconds
    while True:
        wait = interval
        if expires_at is not None:
            wait = min(wait, max(expires_at - time.time(), 0.0) + 0.05)
        await asyncio.sleep(wait)
        if WebSocketState.DISCONNECTED in (ws.client_state, ws.application_state):
            return
        try:
            await state.auth.authenticate(authorization=authorization, api_key=api_key, fresh=True)
        except Unauthenticated as exc:
            log.info("closing a websocket whose credential no longer verifies: %s", exc)
            with suppress(RuntimeError):  # it closed meanwhile
                await ws.close(code=CREDENTIAL_EXPIRED, reason="credential expired or revoked")
            return
        except Exception as exc:  # the key store is unreachable: keep the connection, retry
            log.warning("could not re-check a websocket credential: %s", exc)


class GraphQLEndpoint:
    """Authenticates HTTP GraphQL requests, then hands over to the Strawberry view."""

    def __init__(
        self, schema: BaseSchema, settings: Settings, *, ide_html: Callable[[], str]
    ) -> None:
        """`ide_html`: GraphiQL's page (the console's files)."""
        protocols = [GRAPHQL_TRANSPORT_WS_PROTOCOL]
        if settings.legacy_graphql_ws:
            protocols.append(GRAPHQL_WS_PROTOCOL)
        self.view = GraphQLView(
            schema,
            graphql_ide="graphiql" if settings.graphiql_enabled else None,
            subscription_protocols=protocols,
            max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
            ide_html=ide_html,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not _is_ide_page(scope):
            request = Request(scope)
            try:
                principal: Principal = await app_state(scope).auth.authenticate(
                    authorization=request.headers.get("authorization"),
                    api_key=request.headers.get("x-api-key"),
                )
            except Unauthenticated as exc:
                body = json.dumps(
                    {"errors": [{"message": str(exc), "extensions": {"code": "UNAUTHENTICATED"}}]}
                ).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b"Bearer"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
            scope[PRINCIPAL] = principal
        await self.view(scope, receive, send)


def _is_ide_page(scope: Scope) -> bool:
    if scope["method"] != "GET" or b"query=" in scope.get("query_string", b""):
        return False
    accept = dict(scope["headers"]).get(b"accept", b"")
    return b"text/html" in accept
