"""The headers every response of the API process carries, set in one place so that a new route
cannot forget them: `nosniff` on everything, the page policy on every HTML page (the console,
GraphiQL, anything added later), and `no-store` on every file download."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Pages load and connect to their own origin only (a stray CDN reference fails loudly in the
# browser instead of working online and hanging offline), run no inline script, and are never
# framed (clickjacking). Inline styles and data: fonts are GraphiQL's own CSS; img data:/blob:
# are the console's thumbnails and charts.
PAGE_POLICY = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:;"
    " style-src 'self' 'unsafe-inline'; font-src 'self' data:; script-src 'self';"
    " object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", PAGE_POLICY.encode()),
    # a page's address (a console view, a GraphiQL query) is nobody else's business
    (b"referrer-policy", b"no-referrer"),
)
# an export holds a tenant's rows: no shared or browser cache keeps a copy after the download
DOWNLOAD_HEADERS: tuple[tuple[bytes, bytes], ...] = ((b"cache-control", b"no-store, private"),)
NOSNIFF = (b"x-content-type-options", b"nosniff")

HTML_TYPES = (b"text/html", b"application/xhtml+xml")


def secured(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The response's headers with opsgraph's own: they replace whatever a route set, so no
    route can weaken them."""
    pairs = [(bytes(k), bytes(v)) for k, v in headers]
    content_type = b""
    attachment = False
    for name, value in pairs:
        lowered = name.lower()
        if lowered == b"content-type":
            content_type = value.split(b";", 1)[0].strip().lower()
        elif lowered == b"content-disposition":
            attachment = value.strip().lower().startswith(b"attachment")
    ours = [NOSNIFF]
    if content_type in HTML_TYPES:
        ours += PAGE_HEADERS
    if attachment:
        ours += DOWNLOAD_HEADERS
    replaced = {name for name, _ in ours}
    return [(k, v) for k, v in pairs if k.lower() not in replaced] + ours


class ResponseHeaders:
    """ASGI middleware applying `secured` to every HTTP response (websockets pass through)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = secured(message.get("headers", ()))
            await send(message)

        await self.app(scope, receive, send_secured)
