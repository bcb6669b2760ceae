"""Whether two images are one photo: their keypoints agree on one rotation, scale and shift, and
the images, aligned by it, look alike.

Geometry first: ORB descriptors matched by Hamming distance (Lowe's ratio test), then an
affine transform fitted by RANSAC: a rotation, a scale (a little larger along one axis for a
copy resized to another aspect ratio) and a shift, never a reflection; enough inliers at a
plausible scale make a match. Distinct photos of one kind of scene still pass that at times
(parallel leaf veins, the wavy margin of a lesion repeat along a blade), so the second image
is then warped onto the first and both must correlate: block by block over the overlap (the
median, so that corners filled by a rotation do not count), and again on their fine detail
(each image minus its blur), which two different leaves with the same veins do not share.
"""

from dataclasses import dataclass

import cv2
import numpy as np

from services.trainer.audit.features import SKETCH_SHRINK, ImageFeatures, View

RATIO = 0.8  # Lowe's ratio test
MIN_MATCHES = 8  # matches that pass the ratio test before a transform is fitted
RANSAC_PIXELS = 3.0  # reprojection error of an inlier, in work-image pixels
NEAR_PIXELS = 20.0  # matches this close to the similarity decide the affine transform
MIN_INLIERS = 12
SCALES = (0.4, 2.5)  # plausible scale between copies at the same work area
MAX_STRETCH = 1.6  # a copy resized to another aspect ratio: at most this much wider than high
# What the aligned sketches must show: the median correlation over 16-px blocks, and over
# 8-px blocks of their fine detail. Many inliers leave less to chance, so they need less.
LIKENESS = {"correlation": 0.85, "detail": 0.4}
MANY_INLIERS = 40
LIKENESS_WITH_MANY_INLIERS = {"correlation": 0.7, "detail": 0.25}
_MIN_BLOCKS = 4
_FLAT = 4.0  # a block with less variance per pixel is blank: a filled corner, a white sheet


@dataclass(frozen=True)
class Match:
    inliers: int
    correlation: float
    detail: float

    @property
    def convincing(self) -> bool:
        likeness = LIKENESS_WITH_MANY_INLIERS if self.inliers >= MANY_INLIERS else LIKENESS
        return self.correlation >= likeness["correlation"] and self.detail >= likeness["detail"]


def same_photo(first: ImageFeatures, second: ImageFeatures, mirrored_first: bool) -> bool:
    """Tries the second image as it is and mirrored (mirrored_first: that one first)."""
    for mirrored in (mirrored_first, not mirrored_first):
        found = match(first, second, mirrored)
        if found is not None and found.convincing:
            return True
    return False


def match(first: ImageFeatures, second: ImageFeatures, mirrored: bool) -> Match | None:
    """The alignment of the second image (or its mirror image) onto the first; None without one."""
    transform, inliers = _fit(first.plain, second.view(mirrored))
    if transform is None or inliers < MIN_INLIERS:
        return None
    correlation, detail = _photometric(first.sketch, second.sketch_of(mirrored), transform)
    return Match(inliers, correlation, detail)


def _fit(first: View, second: View) -> tuple[np.ndarray | None, int]:
    """The transform from the first view's keypoints to the second's, and its inlier count.

    RANSAC fits a similarity (rotation, one scale, shift: two matches decide it), which wrong
    matches along a line rarely fool; the matches it leaves near that fit then decide the
    affine transform, which also follows a copy resized to another aspect ratio."""
    if len(first) < MIN_MATCHES or len(second) < 2:
        return None, 0
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(first.descriptors, second.descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    if len(good) < MIN_MATCHES:
        return None, 0
    source = first.points[[m.queryIdx for m in good]]
    target = second.points[[m.trainIdx for m in good]]
    similarity, _ = cv2.estimateAffinePartial2D(
        source, target, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PIXELS, maxIters=2000
    )
    if similarity is None:
        return None, 0
    near = _errors(similarity, source, target) < NEAR_PIXELS
    best, inliers = similarity, int((_errors(similarity, source, target) < RANSAC_PIXELS).sum())
    if near.sum() >= 3:
        affine, _ = cv2.estimateAffine2D(
            source[near], target[near], method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PIXELS
        )
        if affine is not None and _plausible(affine):
            affine_inliers = int((_errors(affine, source, target) < RANSAC_PIXELS).sum())
            if affine_inliers > inliers:
                best, inliers = affine, affine_inliers
    return (best, inliers) if _plausible(best) else (None, 0)


def _errors(transform: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Distance in pixels between where transform puts each source point and its target."""
    return np.linalg.norm(source @ transform[:, :2].T + transform[:, 2] - target, axis=1)


def _plausible(transform: np.ndarray) -> bool:
    """A scale copies can have, no reflection, no more stretch than a changed aspect ratio."""
    if not np.isfinite(transform).all() or np.linalg.det(transform[:, :2]) <= 0:
        return False
    low, high = np.linalg.svd(transform[:, :2], compute_uv=False)[::-1]
    return bool(SCALES[0] < low and high < SCALES[1] and high / low < MAX_STRETCH)


def _photometric(first: np.ndarray, second: np.ndarray, transform: np.ndarray) -> tuple[float, float]:
    """(block correlation, detail correlation) of the two sketches aligned by transform (first →
    second work-image pixels), compared in the frame of the one the other covers more of: a
    crop is compared over all of itself, not over the small part of the wider view it covers."""
    forward = transform.copy()
    forward[:, 2] /= SKETCH_SHRINK
    backward = cv2.invertAffineTransform(forward)
    in_first, in_second = _cover(second, forward, first.shape), _cover(first, backward, second.shape)
    if in_second.mean() > in_first.mean():
        first, second, forward, in_first = second, first, backward, in_second
    size = (first.shape[1], first.shape[0])
    warped = cv2.warpAffine(second, forward, size, flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR)
    first_f, warped_f = first.astype(np.float32), warped.astype(np.float32)
    correlation = _block_correlation(first_f, warped_f, in_first, 16, _FLAT)
    detail = _block_correlation(_detail(first_f), _detail(warped_f), in_first, 8, _FLAT / 4)
    return correlation, detail


def _cover(moving: np.ndarray, transform: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Which pixels of a frame of `shape` the moving image covers once warped there."""
    ones = np.ones_like(moving)
    flags = cv2.WARP_INVERSE_MAP | cv2.INTER_NEAREST
    return cv2.warpAffine(ones, transform, (shape[1], shape[0]), flags=flags).astype(bool)


def _detail(image: np.ndarray) -> np.ndarray:
    return image - cv2.GaussianBlur(image, (0, 0), 2.0)


def _block_correlation(first: np.ndarray, second: np.ndarray, covered: np.ndarray, block: int, flat: float) -> float:
    """Median correlation over the blocks both images cover and neither is blank in; -1 if too few."""
    a, b, inside = _blocks(first, block), _blocks(second, block), _blocks(covered, block).all(axis=1)
    a, b = a[inside], b[inside]
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    var_a, var_b = (a * a).sum(axis=1), (b * b).sum(axis=1)
    textured = (var_a > block * block * flat) & (var_b > block * block * flat)
    if textured.sum() < _MIN_BLOCKS:
        return -1.0
    correlations = (a[textured] * b[textured]).sum(axis=1) / np.sqrt(var_a[textured] * var_b[textured])
    return float(np.median(correlations))


def _blocks(image: np.ndarray, block: int) -> np.ndarray:
    """The image cut into block×block tiles, one tile per row (edges that do not fill a tile dropped)."""
    rows, cols = image.shape[0] // block, image.shape[1] // block
    tiles = image[: rows * block, : cols * block].reshape(rows, block, cols, block).swapaxes(1, 2)
    return tiles.reshape(rows * cols, block * block)
