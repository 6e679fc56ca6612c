"""The task types: GENERATION (an image from a prompt) and thumbnail."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from PIL import Image
from pydantic import BaseModel, Field

import opsgraph
from generation_tasks import provider


class Generation(BaseModel):
    prompt: str = Field(min_length=1, max_length=4000)
    width: int = Field(512, ge=16, le=2048)
    height: int = Field(512, ge=16, le=2048)
    base_image_url: str | None = None


class Thumbnail(BaseModel):
    image_file: str
    size: int = Field(128, ge=16, le=1024)


@opsgraph.task("GENERATION", queue="generation", input=Generation, retries=2, timeout=300)
async def generate(ctx: opsgraph.TaskContext, args: Generation) -> dict[str, object]:
    """An image from a prompt, by the configured image provider (or drawn locally)."""
    if args.base_image_url:
        await ctx.media("inputs", "base_image", url=args.base_image_url, media_type="image")
    await ctx.progress(5, "requesting the image")
    started = time.monotonic()
    try:
        png, source = await provider.generate(args.prompt, args.width, args.height)
    except provider.Refused as exc:
        raise opsgraph.FatalError(str(exc)) from exc
    except provider.Unavailable as exc:
        raise opsgraph.RetryableError(str(exc), retry_after=exc.retry_after) from exc
    ctx.request(
        source.name,
        source.endpoint,
        status=200,
        latency_ms=round((time.monotonic() - started) * 1000, 1),
        width=args.width,
        height=args.height,
    )
    if ctx.cancelled:
        raise opsgraph.FatalError("cancelled before the image was stored")
    out = ctx.folder / "result.png"
    out.write_bytes(png)
    await ctx.media("outputs", "result_image", path=out, media_type="image")
    ctx.log("image stored", bytes=len(png), provider=source.name)
    await ctx.progress(90, "stored")
    return {
        "prompt": args.prompt,
        "width": args.width,
        "height": args.height,
        "provider": source.name,
        "image_file": str(out),
    }


@opsgraph.task("thumbnail", queue="generation", input=Thumbnail, retries=1, timeout=60)
async def thumbnail(ctx: opsgraph.TaskContext, args: Thumbnail) -> dict[str, object]:
    """A thumbnail of an image file, declared as the task's output."""
    source = Path(args.image_file)
    out = ctx.folder / "thumbnail.png"
    try:
        width, height = await asyncio.to_thread(_thumbnail, source, out, args.size)
    except FileNotFoundError:
        raise opsgraph.FatalError(f"no image at {source.name}") from None
    await ctx.media("outputs", "thumbnail", path=out, media_type="image")
    ctx.log("thumbnail made", width=width, height=height)
    return {"thumbnail_file": str(out), "width": width, "height": height}


def _thumbnail(source: Path, out: Path, size: int) -> tuple[int, int]:
    """Pillow blocks: this runs in a thread."""
    with Image.open(source) as image:
        image.thumbnail((size, size))
        image.save(out, format="PNG")
        return image.size
