"""Uploaded images: size, type (by their bytes, not their name) and pixels, checked before any
decoding, so a decompression bomb is refused from its header alone. (The whole request body is
limited before this, while it is read: body_limit.BodySizeLimit.)"""

import io
import warnings

from fastapi import HTTPException, UploadFile, status
from PIL import Image, UnidentifiedImageError

# Magic bytes → the Pillow format that must agree with them.
SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"WEBP", 8, "WEBP"),  # after "RIFF" and the chunk size
)
CHUNK = 1024 * 1024


def read_limited(upload: UploadFile, max_bytes: int) -> bytes:
    """The upload's bytes; 413 as soon as it passes max_bytes (the rest is never read)."""
    data = bytearray()
    while chunk := upload.file.read(CHUNK):
        data += chunk
        if len(data) > max_bytes:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE,
                f"the upload is larger than {max_bytes} bytes (PADDY_MAX_UPLOAD_BYTES)",
            )
    return bytes(data)


def sniff_format(data: bytes) -> str | None:
    for magic, offset, name in SIGNATURES:
        if data[offset : offset + len(magic)] == magic and (name != "WEBP" or data[:4] == b"RIFF"):
            return name
    return None


def check_image(data: bytes, max_pixels: int) -> tuple[int, int]:
    """(width, height) of a JPEG, PNG or WebP within max_pixels; else 415 or 413."""
    expected = sniff_format(data)
    if expected is None:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "not an image: send a JPEG, PNG or WebP file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # open() reads the header only; no pixel is decoded here.
            with Image.open(io.BytesIO(data), formats=[expected]) as image:
                width, height = image.size
    except Image.DecompressionBombError:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"the image has too many pixels; at most {max_pixels} (PADDY_MAX_IMAGE_PIXELS)",
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, f"not a readable {expected} image: send a JPEG, PNG or WebP file"
        ) from None
    if width * height > max_pixels:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"the image has {width}×{height} = {width * height} pixels; at most {max_pixels} (PADDY_MAX_IMAGE_PIXELS)",
        )
    return width, height
