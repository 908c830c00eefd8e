"""Pictures a user sends, made fit for a model that sees: PNG, JPEG, WebP and GIF (its first
frame), at most IMAGE_MAX_PIXELS, scaled to IMAGE_MAX_SIDE and sent as JPEG, or PNG when it has
transparency (Pillow; `scale` blocks, so bot/attachments.py runs it in a worker thread)."""

from __future__ import annotations

import io
import logging

log = logging.getLogger("parley.attachments")

IMAGE_UNREADABLE = "{name} could not be read as an image (PNG, JPEG, WebP and GIF I can)."
IMAGE_TOO_BIG = "{name} is {width:,}×{height:,} pixels; I read images up to 40 megapixels."
IMAGE_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "GIF", "MPO"})
IMAGE_MAX_SIDE = 1568
"""Longest side a picture is scaled down to (Anthropic's limit before it scales; OpenAI's high
detail tiles 2048 down to 768 on the short side, so this costs it nothing)."""
IMAGE_MAX_PIXELS = 40_000_000
IMAGE_TOKENS = 1_600
"""What one picture counts for in the prompt's budget (Anthropic: ~(w×h)/750 ≈ 1,600 at
1092×1092; OpenAI high detail ≤ 1,105)."""


class PictureError(Exception):
    """The picture cannot be read; the message is for the user."""


def scale(name: str, data: bytes) -> tuple[str, bytes]:
    """(media type, bytes) of the picture as the model is shown it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in IMAGE_FORMATS:
                raise PictureError(IMAGE_UNREADABLE.format(name=name))
            if image.width * image.height > IMAGE_MAX_PIXELS:
                raise PictureError(
                    IMAGE_TOO_BIG.format(name=name, width=image.width, height=image.height)
                )
            image.seek(0)
            alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            frame = image.convert("RGBA" if alpha else "RGB")
            frame.thumbnail((IMAGE_MAX_SIDE, IMAGE_MAX_SIDE))
            out = io.BytesIO()
            frame.save(out, "PNG" if alpha else "JPEG", **({} if alpha else {"quality": 85}))
    except PictureError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        log.info("unreadable image name=%s error=%s", name, type(exc).__name__)
        raise PictureError(IMAGE_UNREADABLE.format(name=name)) from None
    return ("image/png" if alpha else "image/jpeg"), out.getvalue()
