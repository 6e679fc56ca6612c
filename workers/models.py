"""Model services behind the provider pattern: a detector (HTTP contract or simulated) and an
enricher (OpenAI-compatible vision endpoint or simulated). Each call goes through its circuit
breaker; only failures of the service itself (unreachable, timeout, 5xx) count against it.

Detector HTTP contract (what a small wrapper around a YOLO server serves):
    POST <OPSGRAPH_DETECTOR_URL>/detect
    {"image": "<base64>", "camera_id": "...", "file_name": "..."}
    → 200 {"detections": [{"label": "person", "confidence": 0.93, "bbox": [x1, y1, x2, y2]}],
           "model": "yolo26", "version": "..."}
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx
from PIL import Image, UnidentifiedImageError
from redis.asyncio import Redis

from app.config import Settings
from app.services.fleet.breakers import Breakers
from workers.providers import ProviderError
from workers.providers.openai import OpenAIProvider

T = TypeVar("T")
LABELS = ("person", "vehicle", "animal", "package")


@dataclass(frozen=True)
class Picture:
    data: bytes
    width: int
    height: int
    media_type: str


# the formats Pillow may decode here: no plugin that calls out (EPS runs Ghostscript)
FORMATS = ("JPEG", "PNG", "WEBP")


def read_picture(data: bytes, *, max_pixels: int) -> Picture:
    """Decode the whole image (a truncated or corrupt file fails here, not in a model). The
    size an image declares is checked before it is decoded: a bomb fails at once, fatally."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as im:
                if im.width * im.height > max_pixels:
                    raise ProviderError(
                        f"Invalid image format: {im.width}x{im.height} is over the"
                        f" {max_pixels}-pixel limit",
                        retryable=False,
                    )
                im.load()
                kind = (im.format or "jpeg").lower()
                return Picture(
                    data=data, width=im.width, height=im.height, media_type=f"image/{kind}"
                )
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        OSError,
        SyntaxError,
        ValueError,
    ) as exc:
        raise ProviderError(f"Invalid image format: {exc}", retryable=False) from None


async def guarded(breakers: Breakers, name: str, call: Callable[[], Awaitable[T]]) -> T:
    """Run a model call through its breaker (CircuitOpen propagates: the caller defers)."""
    generation = await breakers.allow(name)
    try:
        result = await call()
    except ProviderError as exc:
        # a refused request (4xx) says the service is up: only its own failures count
        await breakers.record(name, ok=not exc.retryable, generation=generation, error=str(exc))
        raise
    await breakers.record(name, ok=True, generation=generation)
    return result


class Detector(Protocol):
    name: str
    backend: str

    async def detect(
        self, picture: Picture, *, camera_id: str, file_name: str
    ) -> dict[str, Any]: ...


class SimulatedDetector:
    """Deterministic from the image bytes: the same picture always yields the same objects."""

    backend = "simulated"

    def __init__(self, name: str) -> None:
        self.name = name

    async def detect(self, picture: Picture, *, camera_id: str, file_name: str) -> dict[str, Any]:
        started = time.perf_counter()
        digest = hashlib.sha256(picture.data).digest()
        objects = []
        for i in range(1 + digest[0] % 3):
            b = digest[1 + i * 5 : 6 + i * 5]
            x1, y1 = b[1] * picture.width // 512, b[2] * picture.height // 512
            objects.append(
                {
                    "label": LABELS[b[0] % len(LABELS)],
                    "confidence": round(0.5 + b[3] / 255 * 0.49, 3),
                    "bbox": [x1, y1, min(picture.width, x1 + 1 + b[4]), picture.height],
                }
            )
        return {
            "objects": objects,
            "model": self.name,
            "version": "simulated",
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        }


class HttpDetector:
    backend = "http"

    def __init__(self, name: str, url: str, http: httpx.AsyncClient, timeout: float) -> None:
        self.name, self.url, self.http, self.timeout = name, url.rstrip("/"), http, timeout

    async def detect(self, picture: Picture, *, camera_id: str, file_name: str) -> dict[str, Any]:
        body = {
            "image": base64.b64encode(picture.data).decode(),
            "camera_id": camera_id,
            "file_name": file_name,
        }
        started = time.perf_counter()
        try:
            response = await self.http.post(f"{self.url}/detect", json=body, timeout=self.timeout)
        except httpx.TimeoutException:
            raise ProviderError(
                "Timeout: detector service did not answer", retryable=True
            ) from None
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"Connection refused: detector service unavailable ({exc!r})", retryable=True
            ) from None
        latency = (time.perf_counter() - started) * 1000
        if response.status_code >= 400:
            raise ProviderError(
                f"detector answered {response.status_code}: {response.text[:300]}",
                retryable=response.status_code >= 500 or response.status_code == 429,
                status=response.status_code,
            )
        try:
            data = response.json()
            found = [
                {
                    "label": str(d["label"]),
                    "confidence": float(d["confidence"]),
                    "bbox": [float(v) for v in d.get("bbox", [])][:4],
                }
                for d in data["detections"]
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderError(
                f"detector answered an unexpected shape: {exc}", retryable=True
            ) from None
        return {
            "objects": found,
            "model": str(data.get("model") or self.name),
            "version": data.get("version"),
            "latency_ms": round(latency, 3),
        }


class Enricher(Protocol):
    name: str
    backend: str

    async def enrich(self, picture: Picture, *, detection_type: str | None) -> dict[str, Any]: ...


_CLOTHING = ("dark jacket", "blue jeans", "hoodie", "high-visibility vest", "coat", "cap")
_CARRYING = ("backpack", "package", "bag", "nothing")
_COLOURS = ("black", "white", "grey", "red", "blue", "silver")


class SimulatedEnricher:
    backend = "simulated"

    def __init__(self, name: str) -> None:
        self.name = name

    async def enrich(self, picture: Picture, *, detection_type: str | None) -> dict[str, Any]:
        started = time.perf_counter()
        h = hashlib.sha256(picture.data).digest()
        kind = detection_type or "object"
        attributes: dict[str, Any]
        if kind == "person":
            attributes = {
                "clothing": [_CLOTHING[h[0] % 6], _CLOTHING[h[1] % 6]],
                "carrying": [_CARRYING[h[2] % 4]],
                "age_group": ("adult", "teen", "senior")[h[3] % 3],
            }
            description = (
                f"{attributes['age_group'].capitalize()} wearing {attributes['clothing'][0]}, "
                f"carrying {attributes['carrying'][0]}"
            )
        elif kind == "vehicle":
            attributes = {"color": _COLOURS[h[0] % 6], "type": ("car", "van", "truck")[h[1] % 3]}
            description = f"{attributes['color'].capitalize()} {attributes['type']}"
        else:
            attributes = {"size": ("small", "medium", "large")[h[0] % 3]}
            description = f"{attributes['size'].capitalize()} {kind}"
        return {
            "description": description,
            "attributes": attributes,
            "confidence": round(0.6 + h[4] / 255 * 0.39, 3),
            "model": self.name,
            "version": "simulated",
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        }


class VisionEnricher:
    """An OpenAI-compatible chat endpoint with image input (a data URL)."""

    backend = "http"

    def __init__(self, name: str, provider: OpenAIProvider, model: str) -> None:
        self.name, self.provider, self.model = name, provider, model

    async def enrich(self, picture: Picture, *, detection_type: str | None) -> dict[str, Any]:
        url = f"data:{picture.media_type};base64,{base64.b64encode(picture.data).decode()}"
        prompt = (
            f"Describe the {detection_type or 'main object'} in this security camera image. "
            'Answer with JSON: {"description": "...", "attributes": {...}, "confidence": 0-1}.'
        )
        chat = await self.provider.chat(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": prompt},
                        {"type": "image_url", "image_url": {"url": url}},
                    ],
                }
            ],
            model=self.model,
            params={"temperature": 0.0},
            attempt=1,
        )
        description, confidence = chat.content.strip(), None
        attributes: dict[str, Any] = {}
        try:
            data = json.loads(chat.content[chat.content.index("{") : chat.content.rindex("}") + 1])
            description = str(data.get("description") or description)
            attributes = data.get("attributes") if isinstance(data.get("attributes"), dict) else {}
            confidence = float(data["confidence"]) if "confidence" in data else None
        except (ValueError, TypeError):
            pass  # a plain-text answer is the description
        return {
            "description": description[:4000],
            "attributes": attributes,
            "confidence": confidence,
            "model": chat.model,
            "version": None,
            "latency_ms": chat.latency_ms,
            "input_tokens": chat.input_tokens,
            "output_tokens": chat.output_tokens,
        }


@dataclass
class PipelineModels:
    detector: Detector
    enricher: Enricher
    breakers: Breakers

    async def aclose(self) -> None:
        if isinstance(self.enricher, VisionEnricher):
            await self.enricher.provider.aclose()


def make_models(settings: Settings, redis: Redis, http: httpx.AsyncClient) -> PipelineModels:
    detector: Detector = (
        HttpDetector(
            settings.detector_name, settings.detector_url, http, settings.detector_timeout_seconds
        )
        if settings.detector_url
        else SimulatedDetector(settings.detector_name)
    )
    enricher: Enricher = (
        VisionEnricher(
            settings.enricher_name,
            OpenAIProvider(
                base_url=settings.enricher_base_url,
                api_key=settings.enricher_api_key,
                chat_model=settings.enricher_model,
                embedding_model=settings.enricher_model,
                timeout=settings.enricher_timeout_seconds,
            ),
            settings.enricher_model,
        )
        if settings.enricher_base_url
        else SimulatedEnricher(settings.enricher_name)
    )
    return PipelineModels(
        detector=detector, enricher=enricher, breakers=Breakers(redis, settings.breakers)
    )
