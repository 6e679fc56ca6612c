"""The image provider GENERATION calls: an HTTP endpoint (`GENERATION_API_URL`) or, when none
is set, a local drawing, so the example runs anywhere."""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass

import httpx
from PIL import Image, ImageDraw

TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Source:
    name: str
    endpoint: str


class Refused(Exception):
    """The provider refused the request itself (4xx): trying again fails the same way."""


class Unavailable(Exception):
    """The provider is away or overloaded (5xx, 429, a network error): try again later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


async def generate(prompt: str, width: int, height: int) -> tuple[bytes, Source]:
    url = os.environ.get("GENERATION_API_URL")
    if not url:
        return draw(prompt, width, height), Source("simulated", "local drawing")
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as client:
            answer = await client.post(
                url, json={"prompt": prompt, "width": width, "height": height}
            )
    except httpx.HTTPError as exc:
        raise Unavailable(f"image provider unreachable: {type(exc).__name__}") from exc
    if answer.status_code == 429 or answer.status_code >= 500:
        after = answer.headers.get("retry-after")
        raise Unavailable(
            f"image provider answered {answer.status_code}",
            retry_after=float(after) if after and after.isdigit() else None,
        )
    if answer.status_code >= 400:
        raise Refused(f"image provider refused the request ({answer.status_code})")
    if not answer.content.startswith(b"\x89PNG"):
        raise Refused("image provider answered something that is not a PNG")
    return answer.content, Source("http", httpx.URL(url).path or "/")


def draw(prompt: str, width: int, height: int) -> bytes:
    """A deterministic picture of the prompt: two colours from its hash, and its words."""
    digest = hashlib.sha256(prompt.encode()).digest()
    image = Image.new("RGB", (width, height), tuple(digest[:3]))
    pen = ImageDraw.Draw(image)
    pen.rectangle(
        (width // 8, height // 8, width * 7 // 8, height * 7 // 8), fill=tuple(digest[3:6])
    )
    pen.text((width // 8 + 4, height // 8 + 4), prompt[:40], fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
