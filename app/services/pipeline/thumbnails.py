"""Small previews of the frames behind a detection, for the console's pipeline view: read
from the camera folders only, within the same bounds the pipeline applies to an image, and
never kept (each is made on request, off the event loop)."""

from __future__ import annotations

import base64
import io
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

FORMATS = ("JPEG", "PNG", "WEBP")  # what the pipeline accepts
MIN_SIZE, MAX_SIZE = 32, 320  # a thumbnail's longest side, in pixels


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
