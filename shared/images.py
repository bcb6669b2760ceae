"""One way to turn a photo into pixels, for training, evaluation, predictions and ONNX
predictions alike: a model sees an image decoded exactly as the images it was tested on.

numpy and Pillow only: the edge install (`paddy predict --onnx`, no torch) decodes with it too.
"""

from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image

# Images with more pixels are refused (decompression bombs) where no setting says otherwise
# (the trainers' is PADDY_MAX_IMAGE_PIXELS, services/trainer/settings.py).
MAX_IMAGE_PIXELS = 50_000_000
# What decode_image raises for a file or stream that is not a usable image.
DECODE_ERRORS = (OSError, ValueError, Image.DecompressionBombError)


def decode_image(source: Path | IO[bytes], size: int, max_pixels: int) -> np.ndarray:
    """One image (a file, or its bytes as a stream) as size×size×3 uint8 RGB; raises OSError (or
    ValueError) when unusable."""
    with Image.open(source) as image:
        if image.width * image.height > max_pixels:
            raise ValueError(f"{image.width}×{image.height} px is over the limit of {max_pixels}")
        image.draft("RGB", (size, size))  # JPEG: decode at a reduced scale when that is enough
        rgb = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(rgb, dtype=np.uint8)
