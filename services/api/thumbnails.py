"""Thumbnails of a dataset's images (GET /datasets/{name}/images/{path}) and of a batch's
(GET /batches/{batch_id}/images/{file}): the dashboard's copy groups and galleries show them. Small JPEGs, decoded at reduced scale where the format allows, and never from
an image with more pixels than PADDY_MAX_IMAGE_PIXELS (checked from its header)."""

import hashlib
import io
import warnings
from pathlib import Path

from fastapi import HTTPException, Response, status
from PIL import Image, ImageOps, UnidentifiedImageError

# Longest side of a thumbnail, in pixels: the default and the most a client may ask for.
DEFAULT_SIZE = 160
MAX_SIZE = 512
MIN_SIZE = 16
# Browsers and the dashboard keep a thumbnail this long, then ask again with its ETag.
MAX_AGE_S = 3600


class ThumbnailError(ValueError):
    """The file cannot be shown: not a readable image, or too many pixels."""


def thumbnail(path: Path, size: int, max_pixels: int) -> bytes:
    """A JPEG of the image at path, its longest side at most `size`, upright (EXIF orientation)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size  # from the header: nothing decoded yet
                if width * height > max_pixels:
                    raise ThumbnailError(
                        f"the image has {width}×{height} pixels; at most {max_pixels} (PADDY_MAX_IMAGE_PIXELS)"
                    )
                image.draft("RGB", (size, size))  # JPEG: decode at a fraction of the size
                shown = ImageOps.exif_transpose(image).convert("RGB")
    except ThumbnailError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise ThumbnailError("the file cannot be read as an image") from None
    shown.thumbnail((size, size))
    out = io.BytesIO()
    shown.save(out, format="JPEG", quality=85)
    return out.getvalue()


def etag(path: Path, size: int) -> str:
    """Changes when the file does (its size or modification time) or another size is asked for."""
    stat = path.stat()
    return '"' + hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}:{size}".encode()).hexdigest()[:20] + '"'


def thumbnail_response(image: Path, size: int, if_none_match: str | None, max_pixels: int, named: str) -> Response:
    """The thumbnail as an answer with its ETag, or 304 when the client has it already; 422 naming
    the image (as `named`, never its server path) when it cannot be shown."""
    headers = {"ETag": etag(image, size), "Cache-Control": f"private, max-age={MAX_AGE_S}"}
    if if_none_match == headers["ETag"]:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    try:
        data = thumbnail(image, size, max_pixels)
    except ThumbnailError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{named}: {error}") from None
    return Response(data, media_type="image/jpeg", headers=headers)
