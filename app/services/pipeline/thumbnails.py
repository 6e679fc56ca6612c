"""Small previews of the frames behind a detection, for the console's pipeline view: read
from the camera folders only, within the same bounds the pipeline applies to an image.

Each is a file read and an image decode (tens of milliseconds of CPU), so they are made off the
event loop on a small pool of threads of their own (`OPSGRAPH_THUMBNAIL_THREADS`): however many
are asked for at once, no more decodes than that run, and the rest wait their turn. What was
made is kept per process by (detection, size) in a bounded LRU (`OPSGRAPH_THUMBNAIL_CACHE_SIZE`),
and the same thumbnail asked for again while it is being made (aliases in one operation, or
two consoles) waits for that one decode. A frame that could not be read is not kept: it may
appear later, and refusing it again costs no decode."""

from __future__ import annotations

import asyncio
import base64
import io
import warnings
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from PIL import Image, UnidentifiedImageError

FORMATS = ("JPEG", "PNG", "WEBP")  # what the pipeline accepts
MIN_SIZE, MAX_SIZE = 32, 320  # a thumbnail's longest side, in pixels


@dataclass
class Figures:
    """This process's thumbnails since it started."""

    made: int = 0  # files read and decoded (or tried: a frame that is gone counts too)
    cached: int = 0  # answered from the cache, or from a decode another request started


FIGURES = Figures()

Key = tuple[int, str, int]  # detection id, its file, size (the file: ids restart on a new database)
_cache: OrderedDict[Key, str] = OrderedDict()
_making: dict[Key, asyncio.Future[str | None]] = {}
_pools: dict[int, ThreadPoolExecutor] = {}


def _pool(threads: int) -> ThreadPoolExecutor:
    pool = _pools.get(threads)
    if pool is None:
        pool = _pools[threads] = ThreadPoolExecutor(threads, thread_name_prefix="thumbnail")
    return pool


async def cached_thumbnail(
    detection_id: int,
    file_path: str,
    *,
    root: Path,
    size: int,
    max_bytes: int,
    max_pixels: int,
    threads: int,
    cache_size: int,
) -> str | None:
    """`thumbnail` of a detection's frame, from the cache when it was made before; otherwise
    made on the thumbnail threads (at most `threads` at once in this process)."""
    key = (detection_id, file_path, size)
    hit = _cache.get(key)
    if hit is not None:
        _cache.move_to_end(key)
        FIGURES.cached += 1
        return hit
    loop = asyncio.get_running_loop()
    making = _making.get(key)
    if making is not None and making.get_loop() is loop:
        FIGURES.cached += 1
    else:
        FIGURES.made += 1
        making = loop.run_in_executor(
            _pool(threads),
            partial(
                thumbnail,
                file_path,
                root=root,
                size=size,
                max_bytes=max_bytes,
                max_pixels=max_pixels,
            ),
        )
        _making[key] = making
        making.add_done_callback(partial(_keep, key, cache_size))
    # shielded: a caller that goes away leaves the decode to the others (and the cache)
    return await asyncio.shield(making)


def _keep(key: Key, cache_size: int, done: asyncio.Future[str | None]) -> None:
    if _making.get(key) is done:
        del _making[key]
    if done.cancelled() or done.exception() is not None:
        return
    made = done.result()
    if made is None or cache_size <= 0:
        return
    _cache[key] = made
    _cache.move_to_end(key)
    while len(_cache) > cache_size:
        _cache.popitem(last=False)


def thumbnail(
    file_path: str, *, root: Path, size: int, max_bytes: int, max_pixels: int
) -> str | None:
    """A JPEG data URL whose longest side is `size`; None for a file that is gone, outside the
    camera folders, over the limits or not a picture."""
    path = Path(file_path).resolve()
    if not path.is_relative_to(root.resolve()):
        return None
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
        if len(data) > max_bytes:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as im:
                if im.width * im.height > max_pixels:
                    return None
                im.draft("RGB", (size, size))  # JPEG decodes at a fraction of its size
                small = im.convert("RGB")
                small.thumbnail((size, size))
                out = io.BytesIO()
                small.save(out, format="JPEG", quality=70)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError):
        return None
    except Image.DecompressionBombWarning:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()
