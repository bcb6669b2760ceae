"""A synthetic rice-leaf dataset, drawn with numpy and Pillow, for demos and tests.

Every image shows one green leaf blade; the class is told only by the lesions on the blade
(Bacterialblight: yellow-white streaks from the margin or tip; Brownspot: oval brown spots with a
yellow halo; Leafsmut: small black specks). Lesions are drawn only on the blade, so a model cannot
learn the class from the background.

Three shapes (`shape=`): "square", a blade crossing a square photo on a varied background;
"strip", a whole leaf along a landscape photo on white paper, of varied size and aspect, like real
field photos of rice leaves; "tile", a small square cut from a strip at its resolution, like the
crops some datasets hold. A strip dataset can hold some classes as tiles (`crop_classes=`): the
case where the image size alone tells the class, which a model should not be able to lean on.

Each image can come with its lesion mask (`masks=`): the pixels the lesions changed, so a
heatmap of where a model looked can be scored against where the disease is (bench/gradcam_focus.py).
"""

import math
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageFilter

CLASS_NAMES = ("Bacterialblight", "Brownspot", "Leafsmut")
SHAPES = ("square", "strip", "tile")
SUPERSAMPLE = 2  # the blade is drawn at 2x and box-filtered down: antialiased edges and veins

BACKGROUNDS = {  # two end colours per kind; a gradient runs between two mixes of them
    "soil": ((85, 62, 40), (160, 125, 88)),
    "sky": ((115, 160, 215), (225, 235, 248)),
    "greens": ((35, 70, 28), (125, 165, 75)),
    "pale": ((190, 190, 185), (248, 248, 244)),
}


# A strip's short side varies this much around the requested size, its aspect ratio over this range
# (field photos of rice leaves run from about 2.5:1 to 4:1). A tile's side is this share of the
# requested size: shorter than any strip's short side, so the size alone tells a tile from a strip.
STRIP_SIZE_SPREAD = 0.3
STRIP_ASPECT = (2.5, 4.0)
TILE_SHARE = (0.35, 0.65)
MAX_STRIP_SIZE = 1024  # a strip is up to 1.3 × 4 times as long: 2× supersampled, 0.3 GB a channel


class Pose(NamedTuple):
    """Where the blade lies, lengths in image heights."""

    angle: float  # of the blade's axis, base to tip
    cx: float  # the blade's middle
    cy: float
    length: float
    half_width: float
    bend: float
    tip_fraction: float  # the share of the length over which the blade tapers to its tip


class Leaf(NamedTuple):
    """Per-pixel leaf coordinates (lengths in image heights) and the blade mask."""

    mask: np.ndarray  # bool: the pixel lies on the blade
    u: np.ndarray  # along the blade
    v: np.ndarray  # across the blade, from the (bent) midrib
    t: np.ndarray  # 0 at the base, 1 at the tip
    s: np.ndarray  # -1 .. 1 from one margin to the other


# A blade pixel belongs to a lesion when the lesions moved its colour by more than this (sum of
# the three channels' changes, 0..765): halos count, the faint edge of a feather does not.
LESION_CHANGE = 24.0


def synthesize_dataset(
    out: Path,
    per_class: int,
    size: int,
    seed: int,
    masks: Path | None = None,
    shape: str = "square",
    crop_classes: tuple[str, ...] = (),
) -> dict[str, int]:
    """Draw per_class images for each class into out/<class>/NNNN.png; return {class: count}.

    size: the side of a square, the short side of a strip (±30 %), or that of the strip a tile
    (35-65 % of size) is cut from. masks: also write each image's lesion mask (white on black, same size) to
    masks/<class>/NNNN.png; keep it outside out, where it would read as images of the dataset.
    crop_classes: with shape "strip", these classes are drawn as tiles instead.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1, got {per_class}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    _check_shape(shape, size)
    unknown = sorted(set(crop_classes) - set(CLASS_NAMES))
    if unknown:
        raise ValueError(f"unknown crop classes {unknown}; choose from {list(CLASS_NAMES)}")
    if crop_classes and shape != "strip":
        raise ValueError(f"crop classes are tiles cut from strips: shape must be 'strip', got {shape!r}")
    counts: dict[str, int] = {}
    for class_index, class_name in enumerate(CLASS_NAMES):
        class_dir = Path(out) / class_name
        class_dir.mkdir(parents=True, exist_ok=True)
        names = {f"{i:04d}.png" for i in range(per_class)}
        # A rerun with a smaller per_class must not leave the previous run's extra images behind.
        for stale in class_dir.glob("[0-9][0-9][0-9][0-9]*.png"):
            if stale.stem.isdigit() and stale.name not in names:
                stale.unlink()
        mask_dir = Path(masks) / class_name if masks is not None else None
        if mask_dir is not None:
            mask_dir.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            # One generator per image: image i is the same whatever per_class is.
            rng = np.random.default_rng([seed, class_index, i])
            image_shape = "tile" if class_name in crop_classes else shape
            image, lesions = draw_image_and_mask(rng, class_name, size, image_shape)
            image.save(class_dir / f"{i:04d}.png", compress_level=1)
            if mask_dir is not None:
                lesions.save(mask_dir / f"{i:04d}.png", compress_level=1)
        counts[class_name] = per_class
    return counts


def draw_image(rng: np.random.Generator, class_name: str, size: int, shape: str = "square") -> Image.Image:
    """One RGB image of a leaf with the lesions of class_name; size and shape as in synthesize_dataset.

    The leaf, background and camera come from their own streams of rng, apart from the lesions':
    equal generators give images of the three classes that differ only in their lesions.
    """
    return draw_image_and_mask(rng, class_name, size, shape)[0]


def draw_image_and_mask(
    rng: np.random.Generator, class_name: str, size: int, shape: str = "square"
) -> tuple[Image.Image, Image.Image]:
    """draw_image's photo, and its lesion mask: an L image, 255 where a lesion covers most of a pixel."""
    if class_name not in CLASS_NAMES:
        raise ValueError(f"unknown class {class_name!r}; choose one of {list(CLASS_NAMES)}")
    _check_shape(shape, size)
    scene, lesions, camera = rng.spawn(3)
    if shape == "square":
        width = height = size
        pose, lesion_scale = _square_pose(scene), None
        x, y = _grid(size * SUPERSAMPLE, size * SUPERSAMPLE)
    else:
        height = round(size * scene.uniform(1 - STRIP_SIZE_SPREAD, 1 + STRIP_SIZE_SPREAD))
        width = round(height * scene.uniform(*STRIP_ASPECT))
        pose = _strip_pose(scene, width / height)
        lesion_scale = _lesion_scale(pose)
        x, y = _grid(width * SUPERSAMPLE, height * SUPERSAMPLE)
    leaf = _leaf_geometry(pose, x, y)
    rgb = _paint_leaf(scene, leaf)
    if scene.random() < 0.5:  # dust on every class, so that a few dark dots prove nothing
        dust = [(1.0, 0.0, 0.45, (105, 100, 80))]
        _draw_ovals(scene, leaf, rgb, _count(scene, 1, 5, lesion_scale), _radii(0.004, 0.008, lesion_scale), dust)
    healthy = rgb.copy()
    _draw_lesions(lesions, class_name, leaf, rgb, lesion_scale)
    changed = (np.abs(rgb - healthy).sum(axis=2) > LESION_CHANGE).astype(np.float32)
    lesion_mask = Image.fromarray(((_downsample(changed) >= 0.5) * 255).astype(np.uint8))
    # The blade's share of each output pixel is the alpha of its antialiased edge.
    coverage = _downsample(leaf.mask.astype(np.float32))[..., None]
    blade = _downsample(rgb)  # black off the blade: premultiplied by coverage
    background = _background(scene, size) if shape == "square" else _paper(scene, coverage[..., 0])
    photo = _photograph(camera, blade + (1 - coverage) * background)
    if shape == "tile":
        box = _tile_box(camera, size, np.asarray(lesion_mask) > 0, coverage[..., 0] >= 0.5)
        return photo.crop(box), lesion_mask.crop(box)
    return photo, lesion_mask


def _check_shape(shape: str, size: int) -> None:
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; choose one of {list(SHAPES)}")
    low, high = (16, None) if shape == "square" else (32, MAX_STRIP_SIZE)
    if size < low or (high is not None and size > high):
        limits = f"{low}..{high}" if high is not None else f"at least {low}"
        raise ValueError(f"size must be {limits} px for shape {shape!r}, got {size}")


class _LesionScale(NamedTuple):
    """How much larger (radius) and how many more lesions a strip's blade takes than a square's."""

    radius: float
    number: float


# Where it shows, a square's blade is about this long and half as wide, in image sides: a strip's
# lesions keep their size to the blade's width and their number per width along its length.
SQUARE_BLADE = (1.1, 0.145)


def _lesion_scale(pose: Pose) -> _LesionScale:
    radius = pose.half_width / SQUARE_BLADE[1]
    return _LesionScale(radius, pose.length / radius / SQUARE_BLADE[0])


def _count(rng: np.random.Generator, low: int, high: int, scale: _LesionScale | None) -> int:
    """How many lesions: low..high-1 on a square's blade, scaled to a strip's."""
    if scale is None:
        return int(rng.integers(low, high))
    return int(rng.integers(round(low * scale.number), round(high * scale.number)))


def _radii(low: float, high: float, scale: _LesionScale | None) -> tuple[float, float]:
    """A lesion's radius range in image heights: as given on a square's blade, scaled to a strip's."""
    return (low, high) if scale is None else (low * scale.radius, high * scale.radius)


def _draw_lesions(
    rng: np.random.Generator, class_name: str, leaf: Leaf, rgb: np.ndarray, scale: _LesionScale | None
) -> None:
    if class_name == "Bacterialblight":  # streaks measure themselves in the blade's length and width
        _draw_blight(rng, leaf, rgb)
    elif class_name == "Brownspot":  # yellow halo, brown body, grey-tan centre on some
        body = np.array([125, 62, 25]) + rng.uniform(-25, 20, 3)
        halo, centre = (200, 185, 60), (165, 140, 105)
        layers = [(1.8, 0.8, 0.6, halo), (1.0, 0, 1, body), (0.4, 0, rng.uniform(0, 0.7), centre)]
        _draw_ovals(rng, leaf, rgb, _count(rng, 3, 22, scale), _radii(0.014, 0.04, scale), layers)
    else:  # Leafsmut: many small near-black specks
        specks = [(1.0, 0, 0.9, (rng.uniform(15, 45),) * 3)]
        _draw_ovals(rng, leaf, rgb, _count(rng, 25, 140, scale), _radii(0.006, 0.013, scale), specks)


@lru_cache(maxsize=64)
def _grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres in image heights (y 0..1, x 0..width/height), so that shapes do not depend on the
    size: a row of x and a column of y, which broadcast to the image's shape."""
    ys, xs = np.ogrid[0:height, 0:width]
    return (xs.astype(np.float32) + 0.5) / height, (ys.astype(np.float32) + 0.5) / height


def _smooth_noise(rng: np.random.Generator, side: int, cells: int, height: int | None = None) -> np.ndarray:
    """Low-frequency noise, about -1..1: a coarse random grid scaled up bicubically to side × (height or side)."""
    coarse = rng.standard_normal((cells, cells)).astype(np.float32) * 0.5
    size = (side, side if height is None else height)
    return np.asarray(Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC))


def _jitter(rng: np.random.Generator, amount: float, shape) -> np.ndarray:
    """Uniform noise in -amount..amount, float32 like the images."""
    return rng.uniform(-amount, amount, shape).astype(np.float32)


def _downsample(image: np.ndarray) -> np.ndarray:
    n = SUPERSAMPLE  # a sum of strided views is several times faster than a reshaped mean
    total = np.zeros_like(image[::n, ::n])
    for i in range(n):
        for j in range(n):
            total += image[i::n, j::n]
    return total / (n * n)


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def _square_pose(rng: np.random.Generator) -> Pose:
    """Any direction, crossing the middle; long leaves run off the frame, as in cropped photos."""
    # Python floats throughout: a numpy float64 scalar would turn the float32 arrays into float64.
    angle = float(rng.uniform(0, 2 * math.pi))
    cx, cy = float(rng.uniform(0.35, 0.65)), float(rng.uniform(0.35, 0.65))
    length, half_width = float(rng.uniform(0.9, 1.8)), float(rng.uniform(0.07, 0.22))
    bend, tip_fraction = float(rng.uniform(-0.3, 0.3)), float(rng.uniform(0.25, 0.5))
    return Pose(angle, cx, cy, length, half_width, bend, tip_fraction)


def _strip_pose(rng: np.random.Generator, aspect: float) -> Pose:
    """The whole leaf along the photo, tip to the left or right, a little tilted and bent, all in frame."""
    angle = float(rng.uniform(-0.03, 0.03) + math.pi * rng.integers(2))
    cx, cy = float(aspect / 2 + rng.uniform(-0.03, 0.03) * aspect), float(rng.uniform(0.47, 0.53))
    length, half_width = float(rng.uniform(0.84, 0.92) * aspect), float(rng.uniform(0.12, 0.25))
    # Tilt and bend move the ends at most 0.03 × 2 + 0.03 × 2² ≈ 0.18 heights: the blade stays inside.
    bend, tip_fraction = float(rng.uniform(-0.03, 0.03)), float(rng.uniform(0.25, 0.5))
    return Pose(angle, cx, cy, length, half_width, bend, tip_fraction)


def _leaf_geometry(pose: Pose, x: np.ndarray, y: np.ndarray) -> Leaf:
    angle, cx, cy, length, half_width, bend, tip_fraction = pose
    dx, dy = x - cx, y - cy
    cos, sin = math.cos(angle), math.sin(angle)
    u = dx * cos + dy * sin
    v = -dx * sin + dy * cos - bend * u**2
    t = u / length + 0.5
    # sin ramps: no kink where the taper starts, yet a pointed tip.
    taper = np.sin(math.pi / 2 * np.clip((1 - t) / tip_fraction, 0, 1))
    width = half_width * (0.85 + 0.15 * np.sin(math.pi / 2 * np.clip(t / 0.3, 0, 1))) * taper
    mask = (t >= 0) & (t <= 1) & (np.abs(v) < width)
    return Leaf(mask, u, v, t, v / np.maximum(width, 1e-6))


def _paint_leaf(rng: np.random.Generator, leaf: Leaf) -> np.ndarray:
    """The blade's colours, black off the blade; shading is computed on blade pixels only."""
    base = np.array([rng.uniform(55, 135), rng.uniform(115, 190), rng.uniform(20, 70)], np.float32)
    s, t = np.clip(leaf.s[leaf.mask], -1, 1), leaf.t[leaf.mask]
    veins = np.cos(math.pi * int(rng.integers(4, 10)) * s) ** 2  # veins follow the taper
    veins *= veins  # ** 8 by squaring: thin lines, and far faster than a float power
    veins *= veins
    # Irregular fine stripes along the blade (a random profile across it, constant along it),
    # and uneven colour along it.
    stripes = _random_profile(rng, s, -1, 1, int(rng.integers(25, 60)))
    patches = _random_profile(rng, t, 0, 1, int(rng.integers(4, 9)))
    shade = 0.8 + 0.2 * np.sqrt(1 - s**2)  # a blade is rounded: darker towards its margins
    shade += rng.uniform(0.04, 0.1) * veins + 0.03 * stripes + 0.05 * patches
    shade[np.abs(s) < 0.05] += 0.12  # the midrib
    rgb = np.zeros((*leaf.mask.shape, 3), np.float32)
    rgb[leaf.mask] = shade[:, None] * base
    return rgb


def _random_profile(rng: np.random.Generator, at: np.ndarray, lo: float, hi: float, knots: int):
    """A random curve through `knots` standard-normal values spread over lo..hi, read at `at`."""
    return np.interp(at, np.linspace(lo, hi, knots), rng.normal(0, 1, knots)).astype(np.float32)


def _composite(rgb: np.ndarray, alpha: np.ndarray, colour) -> None:
    alpha = alpha[..., None]
    rgb *= 1 - alpha
    rgb += alpha * np.asarray(colour, dtype=np.float32)


def _draw_blight(rng: np.random.Generator, leaf: Leaf, rgb: np.ndarray) -> None:
    """Straw-coloured streaks with wavy edges running in from a margin, or down from the tip."""
    rows, cols = np.nonzero(leaf.mask)  # blade pixels only: a third of the work on the full image
    t, s, pixels = leaf.t[rows, cols], leaf.s[rows, cols], rgb[rows, cols]
    lo, hi = float(t.min()), float(t.max())  # the visible part of the blade
    streaks = [(rng.uniform(0.3, 0.8), False) for _ in range(rng.integers(1, 4))]
    if hi > 0.9 and rng.random() < 0.6:
        streaks.append((rng.uniform(0.25, 0.6), True))
    for span_fraction, from_tip in streaks:
        span = span_fraction * (hi - lo)
        ta = 1.05 - span if from_tip else rng.uniform(lo - 0.2 * span, hi - 0.6 * span)
        on = (t >= ta) & (t <= ta + span)
        ts, ss = t[on], s[on]
        p = (ts - ta) / span
        if from_tip:  # dries the whole width at the tip, narrowing towards the base
            depth, side = 2.2 * np.clip(1.6 * p, 0, 1) ** 0.8, 1.0
        else:  # deepest in the middle of the streak, with pointed ends
            depth = rng.uniform(0.3, 1.0) * np.clip(np.sin(math.pi * p), 0, 1) ** 0.7
            side = float(rng.choice([-1.0, 1.0]))
        f1, f2, ph1, ph2 = (rng.uniform(a, b) for a, b in ((20, 50), (60, 150), (0, 7), (0, 7)))
        depth *= 1 + 0.2 * np.sin(f1 * ts + ph1) + 0.07 * np.sin(f2 * ts + ph2)  # wavy edges
        from_margin = 1 - side * ss  # 0 on this streak's margin, 2 on the other one
        halo = np.clip(1 - (from_margin - depth) / 0.25, 0, 1) * np.clip(depth / 0.15, 0, 1)
        core = np.clip((depth - from_margin) / 0.06, 0, 1)
        block = pixels[on]
        _composite(block, 0.75 * halo, (205, 200, 75))
        _composite(block, 0.92 * core, np.array([235, 228, 170]) + rng.uniform(-15, 10, 3))
        pixels[on] = block
    rgb[rows, cols] = pixels


def _draw_ovals(rng: np.random.Generator, leaf: Leaf, rgb: np.ndarray, count, radius_range, layers):
    """Ovals elongated along the blade, centred on random blade pixels, painted layer by layer.

    Each layer is (radius, feather: both in oval radii, opacity, colour). All ovals are drawn at
    once, in windows around their centres: a Python loop over 100 specks was the slow part.
    """
    height, width = leaf.mask.shape  # the height is the unit of length
    rows, cols = np.nonzero(leaf.mask)
    pick = rng.integers(0, len(rows), count)
    r0, c0 = rows[pick], cols[pick]
    low, high = radius_range
    along = rng.uniform(low, high, count).astype(np.float32)[:, None, None]
    across = along * rng.uniform(0.45, 0.85, (count, 1, 1)).astype(np.float32)
    reach = math.ceil(radius_range[1] * max(r for r, _, _, _ in layers) * height) + 1
    offsets = np.arange(-reach, reach + 1)
    rr, cc = r0[:, None, None] + offsets[:, None], c0[:, None, None] + offsets
    inside = (rr >= 0) & (rr < height) & (cc >= 0) & (cc < width)
    flat = np.where(inside, rr * width + cc, 0)  # pixel 0 stands in for the outside, at alpha 0
    du = (leaf.u.ravel()[flat] - leaf.u[r0, c0][:, None, None]) / along
    dv = (leaf.v.ravel()[flat] - leaf.v[r0, c0][:, None, None]) / across
    distance = np.sqrt(du**2 + dv**2)  # 1 on the oval's outline
    on_blade = inside & leaf.mask.ravel()[flat]
    pixel = 1 / (along * height)  # one pixel in oval radii: the softest an edge can be
    for radius, feather, opacity, colour in layers:
        alpha = np.clip((radius - distance) / (feather + pixel), 0, 1) * opacity * on_blade
        keep = np.ones(height * width, np.float32)
        np.multiply.at(keep, flat.ravel(), 1 - alpha.ravel())  # overlapping ovals darken together
        touched = np.flatnonzero(keep < 1)
        block = rgb.reshape(-1, 3)[touched]
        _composite(block, 1 - keep[touched], colour)
        rgb.reshape(-1, 3)[touched] = block


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Soil, sky, other greens or a pale table: drawn small and scaled up, so out of focus."""
    small = max(4, round(size / rng.uniform(3, 8)))
    x, y = _grid(small, small)
    kind = list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))]
    low, high = (np.asarray(c, np.float32) for c in BACKGROUNDS[kind])
    # One mix per end colour keeps the hue of the kind; the jitter varies it a little.
    c0, c1 = (low + (high - low) * rng.uniform() + _jitter(rng, 12, 3) for _ in range(2))
    phi = rng.uniform(0, 2 * math.pi)
    g = np.clip((x - 0.5) * math.cos(phi) + (y - 0.5) * math.sin(phi) + 0.5, 0, 1)[..., None]
    bg = c0 * (1 - g) + c1 * g
    bg *= 1 + 0.12 * _smooth_noise(rng, small, int(rng.integers(3, 8)))[..., None]
    if kind == "greens":  # blades behind the leaf
        for _ in range(rng.integers(2, 6)):
            a = rng.uniform(0, math.pi)
            offset, half_width = rng.uniform(-0.5, 0.5), rng.uniform(0.03, 0.1)
            band = np.abs((x - 0.5) * math.sin(a) - (y - 0.5) * math.cos(a) - offset)
            bg *= 1 + rng.uniform(-0.3, 0.3) * np.clip((half_width - band) / 0.03, 0, 1)[..., None]
    if kind == "soil":  # clods and grain
        bg += _jitter(rng, 25, bg.shape[:2])[..., None]
    # Blurred before scaling up, or bicubic interpolation shows the small image's pixels.
    bg_image = Image.fromarray(_to_uint8(bg)).filter(ImageFilter.GaussianBlur(0.8))
    return np.asarray(bg_image.resize((size, size), Image.Resampling.BICUBIC), np.float32)


def _paper(rng: np.random.Generator, coverage: np.ndarray) -> np.ndarray:
    """White-ish paper under a leaf laid on it: a slight tint and gradient, faint mottling, and the
    leaf's soft shadow, offset a little (coverage: the blade's share of each pixel)."""
    height, width = coverage.shape
    colour = rng.uniform(228, 250) + _jitter(rng, 6, 3)
    x, y = _grid(width, height)
    aspect, phi = width / height, rng.uniform(0, 2 * math.pi)
    gradient = rng.uniform(0, 0.08) * ((x - aspect / 2) * math.cos(phi) + (y - 0.5) * math.sin(phi)) / aspect
    mottle = 0.015 * _smooth_noise(rng, width, int(rng.integers(4, 9)), height)
    down, right = (round(shift) for shift in rng.uniform(0.01, 0.04, 2) * height)  # light from the top left
    cast = np.zeros((height, width), np.uint8)
    cast[down:, right:] = _to_uint8(coverage[: height - down, : width - right] * 255)
    blur = ImageFilter.GaussianBlur(height * rng.uniform(0.01, 0.04))
    shadow = np.asarray(Image.fromarray(cast).filter(blur), np.float32) / 255
    return colour * (1 + gradient - mottle - rng.uniform(0.08, 0.2) * shadow)[..., None]


def _tile_box(rng: np.random.Generator, size: int, lesions: np.ndarray, blade: np.ndarray) -> tuple[int, int, int, int]:
    """A square's (left, top, right, bottom) around a lesion pixel, or a blade pixel where there is
    none, like a crop cut from a photo to show the disease; inside the image."""
    height, width = blade.shape
    side = round(size * rng.uniform(*TILE_SHARE))
    rows, cols = np.nonzero(lesions if lesions.any() else blade)
    pick = rng.integers(len(rows))
    top = int(np.clip(rows[pick] - side // 2, 0, height - side))
    left = int(np.clip(cols[pick] - side // 2, 0, width - side))
    return left, top, left + side, top + side


def _photograph(rng: np.random.Generator, image: np.ndarray) -> Image.Image:
    """Camera effects: a little blur, brightness, contrast, colour cast, uneven light, noise."""
    photo = Image.fromarray(_to_uint8(image))
    short_side = min(photo.size)
    if rng.random() < 0.5:
        photo = photo.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 0.7) * short_side / 128))
    pixels = np.asarray(photo, np.float32)
    pixels = (pixels - 128) * rng.uniform(0.8, 1.2) + 128
    pixels *= rng.uniform(0.75, 1.2) * (1 + _jitter(rng, 0.08, 3))
    x, y = _grid(*photo.size)
    aspect = photo.width / photo.height  # the light changes as much along a strip as across a square
    phi = rng.uniform(0, 2 * math.pi)
    light = 1 + rng.uniform(0, 0.2) * ((x - aspect / 2) * math.cos(phi) + (y - 0.5) * math.sin(phi)) / aspect
    pixels = pixels * light[..., None] + _jitter(rng, rng.uniform(2, 8), pixels.shape)
    return Image.fromarray(_to_uint8(pixels))
