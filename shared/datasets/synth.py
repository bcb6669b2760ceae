"""A synthetic rice-leaf dataset, drawn with numpy and Pillow, for demos and tests.

Every image shows one green leaf blade on a varied background; the class is told only by the
lesions on the blade (Bacterialblight: yellow-white streaks from the margin or tip; Brownspot:
oval brown spots with a yellow halo; Leafsmut: small black specks). Lesions are masked to the
blade, so a model cannot learn the class from the background.
"""

from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageFilter

CLASS_NAMES = ("Bacterialblight", "Brownspot", "Leafsmut")
SUPERSAMPLE = 2  # draw at 2x and box-filter down: antialiased edges for free

BACKGROUNDS = {  # two end colours per kind; a gradient runs between points drawn from them
    "soil": ((85, 62, 40), (160, 125, 88)),
    "sky": ((115, 160, 215), (225, 235, 248)),
    "greens": ((35, 70, 28), (125, 165, 75)),
    "pale": ((190, 190, 185), (248, 248, 244)),
}


class Leaf(NamedTuple):
    """Per-pixel leaf coordinates (lengths in image sides) and the blade mask."""

    mask: np.ndarray  # bool: pixel lies on the blade
    u: np.ndarray  # along the blade
    v: np.ndarray  # across the blade, measured from the bent midrib
    t: np.ndarray  # 0 at the base, 1 at the tip
    s: np.ndarray  # -1 .. 1 from one margin to the other


def synthesize_dataset(out: Path, per_class: int, size: int, seed: int) -> dict[str, int]:
    """Draw per_class images of size×size px for each class into out/<class>/NNNN.png; return {class: count}."""
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1, got {per_class}")
    if size < 16:
        raise ValueError(f"size must be at least 16 px, got {size}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    out = Path(out)
    counts: dict[str, int] = {}
    for class_index, class_name in enumerate(CLASS_NAMES):
        class_dir = out / class_name
        class_dir.mkdir(parents=True, exist_ok=True)
        names = {f"{i:04d}.png" for i in range(per_class)}
        # A rerun with a smaller per_class must not leave the old run's extra images behind.
        for stale in class_dir.glob("[0-9][0-9][0-9][0-9]*.png"):
            if stale.name not in names and stale.stem.isdigit():
                stale.unlink()
        for i in range(per_class):
            # One generator per image: image i is the same whatever per_class is.
            rng = np.random.default_rng([seed, class_index, i])
            draw_image(rng, class_name, size).save(class_dir / f"{i:04d}.png")
        counts[class_name] = per_class
    return counts


def draw_image(rng: np.random.Generator, class_name: str, size: int) -> Image.Image:
    """One RGB image of a leaf with the lesions of class_name."""
    side = size * SUPERSAMPLE
    x, y = _grid(side)
    leaf = _leaf_geometry(rng, x, y)
    rgb = _paint_leaf(rng, leaf, side)
    _draw_dust(rng, leaf, rgb, side)  # in every class, so that a few dark dots prove nothing
    if class_name == "Bacterialblight":
        _draw_blight(rng, leaf, rgb)
    elif class_name == "Brownspot":
        _draw_spots(rng, leaf, rgb, side, rng.integers(3, 22), (0.014, 0.04), halo=True)
    elif class_name == "Leafsmut":
        _draw_spots(rng, leaf, rgb, side, rng.integers(25, 140), (0.005, 0.011), halo=False)
    else:
        raise ValueError(f"unknown class {class_name!r}; choose one of {list(CLASS_NAMES)}")
    image = np.where(leaf.mask[..., None], rgb, _background(rng, x, y, side))
    small = Image.fromarray(_to_uint8(image)).resize((size, size), Image.Resampling.BOX)
    return _photograph(rng, small, x[::SUPERSAMPLE, ::SUPERSAMPLE], y[::SUPERSAMPLE, ::SUPERSAMPLE])


@lru_cache(maxsize=4)
def _grid(side: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres in image sides (0..1), so that every shape is independent of size."""
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float32)
    return (xs + 0.5) / side, (ys + 0.5) / side


def _smooth_noise(rng: np.random.Generator, side: int, cells: int) -> np.ndarray:
    """Low-frequency noise, about -1..1: a coarse random grid scaled up bicubically."""
    coarse = rng.standard_normal((cells, cells)).astype(np.float32) * 0.5
    return np.asarray(Image.fromarray(coarse).resize((side, side), Image.Resampling.BICUBIC))


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def _composite(rgb: np.ndarray, alpha: np.ndarray, colour) -> None:
    alpha = alpha[..., None]
    rgb *= 1 - alpha
    rgb += alpha * np.asarray(colour, dtype=np.float32)


def _leaf_geometry(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> Leaf:
    angle = rng.uniform(0, 2 * np.pi)
    cx, cy = rng.uniform(0.35, 0.65, size=2)  # the blade always crosses the middle of the frame
    length = rng.uniform(0.9, 1.8)  # long leaves run off the frame, as in cropped photos
    half_width = rng.uniform(0.07, 0.22)
    bend = rng.uniform(-0.3, 0.3)
    tip_fraction = rng.uniform(0.25, 0.5)
    dx, dy = x - cx, y - cy
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle) - bend * u**2
    t = u / length + 0.5
    # sin: no kink where the taper starts, yet a pointed tip.
    taper = np.sin(np.pi / 2 * np.clip((1 - t) / tip_fraction, 0, 1))
    width = half_width * (0.85 + 0.15 * np.sin(np.pi / 2 * np.clip(t / 0.3, 0, 1))) * taper
    mask = (t >= 0) & (t <= 1) & (np.abs(v) < width)
    return Leaf(mask, u, v, t, v / np.maximum(width, 1e-6))


def _paint_leaf(rng: np.random.Generator, leaf: Leaf, side: int) -> np.ndarray:
    base = np.array([rng.uniform(55, 135), rng.uniform(115, 190), rng.uniform(20, 70)], np.float32)
    s = np.clip(leaf.s, -1, 1)
    veins = np.cos(np.pi * rng.integers(4, 10) * s) ** 8  # parallel veins follow the taper
    # Irregular fine stripes along the blade: a random profile across it, constant along it.
    knots = int(rng.integers(25, 60))
    stripes = np.interp(s, np.linspace(-1, 1, knots), rng.normal(0, 1, knots)).astype(np.float32)
    shade = 0.8 + 0.2 * np.sqrt(1 - s**2)  # a blade is rounded: darker towards its margins
    shade = shade + rng.uniform(0.04, 0.1) * veins + 0.12 * (np.abs(s) < 0.05)  # veins, midrib
    shade = shade + 0.03 * stripes + 0.07 * _smooth_noise(rng, side, 5)  # uneven colour
    return shade[..., None] * base


def _draw_dust(rng: np.random.Generator, leaf: Leaf, rgb: np.ndarray, side: int) -> None:
    if rng.random() < 0.5:
        _draw_spots(rng, leaf, rgb, side, rng.integers(1, 5), (0.004, 0.008), halo=False, dust=True)


def _draw_blight(rng: np.random.Generator, leaf: Leaf, rgb: np.ndarray) -> None:
    visible = leaf.t[leaf.mask]
    lo, hi = float(visible.min()), float(visible.max())
    streaks = [(rng.uniform(0.3, 0.8), False) for _ in range(rng.integers(1, 4))]
    if hi > 0.9 and rng.random() < 0.6:
        streaks.append((rng.uniform(0.25, 0.6), True))
    for span_fraction, from_tip in streaks:
        span = span_fraction * (hi - lo)
        if from_tip:  # tip blight: dries the whole width near the tip, narrowing towards the base
            tb, ta = 1.05, 1.05 - span
            p = np.clip((leaf.t - ta) / span, 0, 1)
            envelope, depth_max, side = np.sqrt(np.clip(1.6 * p, 0, 1)), 2.2, 1.0
        else:  # a margin streak, deepest in its middle
            ta = rng.uniform(lo - 0.2 * span, hi - 0.6 * span)
            tb = ta + span
            p = np.clip((leaf.t - ta) / span, 0, 1)
            envelope, depth_max = np.sqrt(np.sin(np.pi * p)), rng.uniform(0.35, 1.1)
            side = rng.choice([-1.0, 1.0])
        f1, f2, ph1, ph2 = rng.uniform(20, 50), rng.uniform(60, 150), *rng.uniform(0, 2 * np.pi, 2)
        wave = 1 + 0.2 * np.sin(f1 * leaf.t + ph1) + 0.1 * np.sin(f2 * leaf.t + ph2)
        depth = depth_max * envelope * wave
        from_margin = 1 - side * leaf.s  # 0 on this streak's margin, 2 on the other one
        on_streak = leaf.mask & (leaf.t >= ta) & (leaf.t <= tb)
        halo = np.clip(1 - (from_margin - depth) / 0.3, 0, 1) * on_streak * (depth > 0.02)
        core = np.clip((depth - from_margin) / 0.06, 0, 1) * on_streak
        straw = np.array([235, 228, 170]) + rng.uniform(-15, 10, 3)
        _composite(rgb, 0.75 * halo, (205, 200, 75))
        _composite(rgb, 0.92 * core, straw)


def _draw_spots(rng, leaf, rgb, side, count, radius_range, halo: bool, dust: bool = False) -> None:
    """Oval spots elongated along the blade, centred on random blade pixels."""
    rows, cols = np.nonzero(leaf.mask)
    for k in rng.integers(0, len(rows), size=count):
        row, col = int(rows[k]), int(cols[k])
        along = rng.uniform(*radius_range)
        across = along * rng.uniform(0.45, 0.85)
        reach = int(np.ceil(along * (1.9 if halo else 1.1) * side)) + 2
        window = (slice(max(row - reach, 0), row + reach + 1), slice(max(col - reach, 0), col + reach + 1))
        du = (leaf.u[window] - leaf.u[row, col]) / along
        dv = (leaf.v[window] - leaf.v[row, col]) / across
        d = np.sqrt(du**2 + dv**2)
        on_leaf = leaf.mask[window]
        patch = rgb[window]  # a view: compositing into it paints rgb
        edge = along * side  # soft edge about one render pixel wide, whatever the spot size
        if dust:
            _composite(patch, 0.45 * np.clip((1 - d) * edge, 0, 1) * on_leaf, (105, 100, 80))
        elif halo:  # Brownspot: yellow halo, brown body, grey-tan centre on the larger spots
            _composite(patch, 0.6 * np.clip((1.8 - d) / 0.8, 0, 1) * on_leaf, (200, 185, 60))
            brown = np.array([125, 62, 25]) + rng.uniform(-25, 20, 3)
            _composite(patch, np.clip((1 - d) * edge, 0, 1) * on_leaf, brown)
            centre = rng.uniform(0, 0.7) * np.clip((0.4 - d) * edge, 0, 1) * on_leaf
            _composite(patch, centre, (165, 140, 105))
        else:  # Leafsmut: small near-black specks
            black = rng.uniform(15, 45)
            _composite(patch, rng.uniform(0.8, 1) * np.clip((1 - d) * edge, 0, 1) * on_leaf, (black,) * 3)


def _background(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, side: int) -> np.ndarray:
    kind = list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))]
    low, high = (np.asarray(c, np.float32) for c in BACKGROUNDS[kind])
    # One mix per end colour keeps the hue of the kind; the jitter varies it a little.
    c0, c1 = (low + (high - low) * rng.uniform() + rng.uniform(-12, 12, 3) for _ in range(2))
    phi = rng.uniform(0, 2 * np.pi)
    g = np.clip((x - 0.5) * np.cos(phi) + (y - 0.5) * np.sin(phi) + 0.5, 0, 1)[..., None]
    bg = c0 * (1 - g) + c1 * g
    bg *= 1 + 0.12 * _smooth_noise(rng, side, int(rng.integers(3, 8)))[..., None]
    if kind == "greens":  # out-of-focus blades behind the leaf
        for _ in range(rng.integers(2, 6)):
            a = rng.uniform(0, np.pi)
            band = np.abs((x - 0.5) * np.sin(a) - (y - 0.5) * np.cos(a) - rng.uniform(-0.5, 0.5))
            bg *= 1 + rng.uniform(-0.3, 0.3) * (band < rng.uniform(0.03, 0.1))[..., None]
    if kind == "soil":  # grain
        bg += rng.normal(0, 12, bg.shape).astype(np.float32)
    blur = rng.uniform(0.5, 2.5) * side / 128  # the background is out of focus
    return np.asarray(Image.fromarray(_to_uint8(bg)).filter(ImageFilter.GaussianBlur(blur)), np.float32)


def _photograph(rng: np.random.Generator, image: Image.Image, x: np.ndarray, y: np.ndarray) -> Image.Image:
    """Camera effects: a little blur, brightness, contrast, colour cast, uneven light, noise."""
    if rng.random() < 0.5:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 0.7) * image.width / 128))
    pixels = np.asarray(image, np.float32)
    pixels = (pixels - 128) * rng.uniform(0.8, 1.2) + 128
    pixels *= rng.uniform(0.75, 1.2) * rng.uniform(0.92, 1.08, 3)
    phi = rng.uniform(0, 2 * np.pi)
    light = 1 + rng.uniform(0, 0.2) * ((x - 0.5) * np.cos(phi) + (y - 0.5) * np.sin(phi))
    pixels = pixels * light[..., None] + rng.normal(0, rng.uniform(1, 5), pixels.shape)
    return Image.fromarray(_to_uint8(pixels))
