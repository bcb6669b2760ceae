"""What the near-copy search keeps of each image: ORB keypoints of the image and of its mirror
image, and a small grey sketch for the photometric check.

Every image is first scaled to the same area (WORK_AREA), whatever its size: a copy rescaled
to another resolution then shows its content at nearly the same scale as its source, so only
crops and rotations with a larger canvas change the scale, well within ORB's pyramid. Contrast
is equalised locally (CLAHE) before detection, so brightness and contrast changes move fewer
keypoints. ORB's descriptors are rotation-invariant but not mirror-invariant: the mirror
image's own keypoints cover flips (a vertical flip is a mirror image turned by 180°).
"""

import math
import threading
from dataclasses import dataclass

import cv2
import numpy as np

WORK_AREA = 256 * 256  # pixels every image is scaled to before detection
KEYPOINTS = 300  # ORB keypoints per view; about 10 KB of descriptors
SKETCH_SHRINK = 2  # the sketch is the work image at half its side
_CLAHE_CLIP, _CLAHE_TILES = 2.0, (4, 4)
_local = threading.local()


@dataclass(frozen=True)
class View:
    """Keypoints of one orientation: positions (N×2, work-image pixels) and ORB descriptors (N×32)."""

    points: np.ndarray
    descriptors: np.ndarray

    def __len__(self) -> int:
        return len(self.points)


@dataclass(frozen=True)
class ImageFeatures:
    plain: View
    mirrored: View  # keypoints of the image flipped left-right, in the flipped image's pixels
    sketch: np.ndarray  # the grey work image at 1/SKETCH_SHRINK of its side, uint8 (not equalised:
    # equalising would turn the faint noise of a flat background into texture)

    def view(self, mirrored: bool) -> View:
        return self.mirrored if mirrored else self.plain

    def sketch_of(self, mirrored: bool) -> np.ndarray:
        return np.ascontiguousarray(self.sketch[:, ::-1]) if mirrored else self.sketch


def work_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) of an image scaled to WORK_AREA, keeping its aspect ratio."""
    scale = math.sqrt(WORK_AREA / (width * height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def describe(grey: np.ndarray) -> ImageFeatures:
    """Features of one grey image already at its work size (uint8, H×W)."""
    equalised = _clahe().apply(grey)
    height, width = grey.shape
    sketch = cv2.resize(
        grey, (max(1, width // SKETCH_SHRINK), max(1, height // SKETCH_SHRINK)), interpolation=cv2.INTER_AREA
    )
    return ImageFeatures(_view(equalised), _view(np.ascontiguousarray(equalised[:, ::-1])), sketch)


def _view(grey: np.ndarray) -> View:
    keypoints, descriptors = _orb().detectAndCompute(grey, None)
    if descriptors is None:
        return View(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8))
    return View(np.array([k.pt for k in keypoints], np.float32).reshape(-1, 2), descriptors)


def _orb() -> cv2.ORB:
    """One detector per thread: OpenCV algorithms keep state between calls."""
    if not hasattr(_local, "orb"):
        _local.orb = cv2.ORB.create(KEYPOINTS, fastThreshold=5, edgeThreshold=31, patchSize=31)
    return _local.orb


def _clahe() -> cv2.CLAHE:
    if not hasattr(_local, "clahe"):
        _local.clahe = cv2.createCLAHE(_CLAHE_CLIP, _CLAHE_TILES)
    return _local.clahe
