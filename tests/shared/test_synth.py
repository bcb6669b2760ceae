import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shared.datasets.imagefolder import scan_image_folder
from shared.datasets.splits import stratified_split
from shared.datasets.synth import CLASS_NAMES, draw_image, draw_image_and_mask, synthesize_dataset


def digests(root: Path) -> dict[str, str]:
    """sha256 of every image, by path relative to root."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*.png"))
    }


def test_image_folder_layout_with_per_class_images_of_each_class(tmp_path):
    out = tmp_path / "not" / "yet" / "there"
    counts = synthesize_dataset(out, per_class=5, size=32, seed=0)
    assert counts == {name: 5 for name in CLASS_NAMES}
    index = scan_image_folder(out)
    assert index.class_names == ["Bacterialblight", "Brownspot", "Leafsmut"]
    assert Counter(index.labels) == {0: 5, 1: 5, 2: 5}
    names = sorted(path.name for path in (out / "Leafsmut").iterdir())
    assert names == ["0000.png", "0001.png", "0002.png", "0003.png", "0004.png"]
    split = stratified_split(index.labels, seed=0)  # enough to train on: every class in every split
    assert all({index.labels[i] for i in indices} == {0, 1, 2} for indices in split.values())


def test_images_are_rgb_of_the_requested_size(tmp_path):
    synthesize_dataset(tmp_path, per_class=2, size=48, seed=3)
    paths = sorted(tmp_path.rglob("*.png"))
    assert len(paths) == 6
    for path in paths:
        with Image.open(path) as image:
            assert (image.mode, image.size) == ("RGB", (48, 48))


def test_same_seed_gives_identical_files(tmp_path):
    synthesize_dataset(tmp_path / "a", per_class=3, size=40, seed=7)
    synthesize_dataset(tmp_path / "b", per_class=3, size=40, seed=7)
    assert digests(tmp_path / "a") == digests(tmp_path / "b")


def test_different_seeds_give_different_images(tmp_path):
    synthesize_dataset(tmp_path / "a", per_class=3, size=40, seed=7)
    synthesize_dataset(tmp_path / "b", per_class=3, size=40, seed=8)
    a, b = digests(tmp_path / "a"), digests(tmp_path / "b")
    assert a.keys() == b.keys()
    assert all(a[name] != b[name] for name in a)


def test_images_within_a_class_differ(tmp_path):
    synthesize_dataset(tmp_path, per_class=4, size=32, seed=0)
    assert len(set(digests(tmp_path).values())) == 12


def test_an_image_does_not_depend_on_per_class(tmp_path):
    synthesize_dataset(tmp_path / "small", per_class=2, size=32, seed=5)
    synthesize_dataset(tmp_path / "large", per_class=4, size=32, seed=5)
    small, large = digests(tmp_path / "small"), digests(tmp_path / "large")
    assert small == {name: large[name] for name in small}


def test_rerun_overwrites_and_leaves_no_extra_images(tmp_path):
    synthesize_dataset(tmp_path / "data", per_class=4, size=32, seed=1)
    (tmp_path / "data" / "Brownspot" / "notes.txt").write_text("kept")
    synthesize_dataset(tmp_path / "data", per_class=2, size=32, seed=2)
    synthesize_dataset(tmp_path / "fresh", per_class=2, size=32, seed=2)
    assert digests(tmp_path / "data") == digests(tmp_path / "fresh")
    assert (tmp_path / "data" / "Brownspot" / "notes.txt").read_text() == "kept"


@pytest.mark.parametrize(
    ("bad", "argument"),
    [({"per_class": 0}, "per_class"), ({"size": 15}, "size"), ({"seed": -1}, "seed")],
)
def test_bad_arguments_raise_naming_the_argument(tmp_path, bad, argument):
    arguments = {"out": tmp_path / "data", "per_class": 2, "size": 32, "seed": 0} | bad
    with pytest.raises(ValueError, match=argument):
        synthesize_dataset(**arguments)
    assert not (tmp_path / "data").exists()


def test_unknown_class_raises():
    with pytest.raises(ValueError, match="'Healthy'"):
        draw_image(np.random.default_rng(0), "Healthy", 32)


def colour_fractions(image: Image.Image) -> dict[str, float]:
    """Fractions of the image's pixels in each lesion colour."""
    rgb = np.asarray(image, dtype=np.int32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    brightest, dullest = rgb.max(axis=-1), rgb.min(axis=-1)
    return {
        "near-black": float(((brightest < 70) & (brightest - dullest < 25)).mean()),
        "yellow-white": float(((r > 170) & (g > 160) & (b < g - 25) & (abs(r - g) < 40)).mean()),
        "brown": float(((r > 1.6 * g) & (g > 1.3 * b) & (r > 50)).mean()),
    }


LESION_COLOURS = {"Leafsmut": "near-black", "Bacterialblight": "yellow-white", "Brownspot": "brown"}


def test_equal_generators_give_equal_scenes():
    images = [np.asarray(draw_image(np.random.default_rng(4), name, 64)) for name in CLASS_NAMES]
    same_everywhere = (images[0] == images[1]).all(axis=-1) & (images[1] == images[2]).all(axis=-1)
    assert same_everywhere.mean() > 0.5  # only the lesions, on the blade, differ


def test_classes_differ_in_the_colour_of_their_lesions():
    # Drawn from equal generators, the classes share leaf, background and camera (see the test
    # above), so background colours cancel out and a difference in colour is the lesions'.
    means = {}
    for name in CLASS_NAMES:
        images = [draw_image(np.random.default_rng(k), name, 128) for k in range(20)]
        fractions = [colour_fractions(image) for image in images]
        means[name] = {colour: np.mean([f[colour] for f in fractions]) for colour in fractions[0]}
    for name, colour in LESION_COLOURS.items():
        others = [means[other][colour] for other in CLASS_NAMES if other != name]
        assert means[name][colour] > 2 * max(others), (name, colour, means)


def test_lesion_masks_mark_the_lesions_and_nothing_else(tmp_path):
    """A mask per image, the image's size, white where the lesions changed the leaf: the same
    scene drawn with another class's lesions differs from it only near either's lesions."""
    synthesize_dataset(tmp_path / "images", per_class=3, size=64, seed=5, masks=tmp_path / "masks")
    images, masks = sorted((tmp_path / "images").rglob("*.png")), sorted((tmp_path / "masks").rglob("*.png"))
    assert [p.relative_to(tmp_path / "images") for p in images] == [p.relative_to(tmp_path / "masks") for p in masks]
    shares = {}
    for path in masks:
        with Image.open(path) as mask:
            assert mask.mode == "L" and mask.size == (64, 64)
            values = np.asarray(mask)
        assert set(np.unique(values)) <= {0, 255}
        shares.setdefault(path.parent.name, []).append((values > 0).mean())
    assert all(0 < share < 0.6 for values in shares.values() for share in values), shares
    # Equal generators: equal scenes, only the lesions differ; outside both masks the photos agree.
    (a, mask_a), (b, mask_b) = (
        (np.asarray(image, np.int16), np.asarray(mask) > 0)
        for image, mask in (
            draw_image_and_mask(np.random.default_rng([9, 0, 0]), name, 64) for name in ("Brownspot", "Leafsmut")
        )
    )
    change = np.abs(a - b).sum(axis=2)
    healthy_in_both = ~(binary_grown(mask_a) | binary_grown(mask_b))
    # Outside the masks: a lesion's faint feather here and there (under the mask's threshold).
    assert change[healthy_in_both].mean() < 1
    assert change[mask_a].mean() > 30  # Brownspot's spots are where its mask says


def binary_grown(mask: np.ndarray) -> np.ndarray:
    """The mask grown by two pixels: the camera's blur carries a lesion's colour a little further."""
    grown = mask.copy()
    for _ in range(2):
        grown[1:] |= grown[:-1].copy()
        grown[:-1] |= grown[1:].copy()
        grown[:, 1:] |= grown[:, :-1].copy()
        grown[:, :-1] |= grown[:, 1:].copy()
    return grown


def test_masks_are_optional_and_the_images_the_same_with_or_without(tmp_path):
    synthesize_dataset(tmp_path / "plain", per_class=2, size=32, seed=1)
    synthesize_dataset(tmp_path / "masked", per_class=2, size=32, seed=1, masks=tmp_path / "masks")
    assert digests(tmp_path / "plain") == digests(tmp_path / "masked")


# Mean and standard deviation of the pixel values of squares drawn before strips existed: adding
# shapes must not move the default. Not a hash: numpy's sin and cos may differ in the last bit
# from one CPU's instructions to another's and flip a pixel, which moves these by well under 0.6
# (one mask pixel of 32 × 32 moves its mean by 0.25); a moved leaf or lesion moves them by far more.
SQUARE_PIXELS = {
    (32, 0, "images/Bacterialblight/0000.png"): (123.312, 34.101),
    (32, 0, "images/Brownspot/0000.png"): (93.608, 29.436),
    (32, 0, "images/Leafsmut/0000.png"): (202.49, 65.975),
    (32, 0, "masks/Bacterialblight/0000.png"): (27.891, 79.588),
    (32, 0, "masks/Brownspot/0000.png"): (3.984, 31.625),
    (32, 0, "masks/Leafsmut/0000.png"): (5.728, 37.785),
    (64, 5, "images/Brownspot/0002.png"): (191.827, 54.742),
    (64, 5, "masks/Bacterialblight/0002.png"): (37.665, 90.476),
}


def test_squares_are_drawn_as_before_shapes(tmp_path):
    for size, seed in {(size, seed) for size, seed, _ in SQUARE_PIXELS}:
        root = tmp_path / f"{size}-{seed}"
        synthesize_dataset(root / "images", per_class=3, size=size, seed=seed, masks=root / "masks")
    for (size, seed, name), expected in SQUARE_PIXELS.items():
        pixels = np.asarray(Image.open(tmp_path / f"{size}-{seed}" / name), dtype=np.float64)
        assert (pixels.mean(), pixels.std()) == pytest.approx(expected, abs=0.6), name


def image_sizes(root: Path) -> dict[str, tuple[int, int]]:
    sizes = {}
    for path in sorted(root.rglob("*.png")):
        with Image.open(path) as image:
            sizes[str(path.relative_to(root))] = image.size
    return sizes


def test_strips_are_landscape_of_varied_size_and_aspect(tmp_path):
    counts = synthesize_dataset(tmp_path, per_class=5, size=40, seed=0, shape="strip")
    assert counts == {name: 5 for name in CLASS_NAMES}
    index = scan_image_folder(tmp_path)
    assert Counter(index.labels) == {0: 5, 1: 5, 2: 5}
    sizes = list(image_sizes(tmp_path).values())
    assert len(sizes) == 15
    for width, height in sizes:  # the short side 40 ± 30 %, the aspect 2.5:1 .. 4:1 (to a pixel)
        assert 28 <= height <= 52
        assert 2.5 * height - 1 <= width <= 4 * height + 1
    heights, aspects = [h for _, h in sizes], [w / h for w, h in sizes]
    assert len(set(heights)) >= 8 and max(heights) - min(heights) >= 10
    assert max(aspects) - min(aspects) >= 0.8


def test_strips_are_deterministic_for_a_seed(tmp_path):
    def draw(name: str, seed: int) -> dict[str, str]:
        synthesize_dataset(
            tmp_path / name, per_class=2, size=32, seed=seed, masks=tmp_path / f"{name}-masks", shape="strip"
        )
        return digests(tmp_path / name) | digests(tmp_path / f"{name}-masks")

    first, again, other = draw("a", 3), draw("b", 3), draw("c", 4)
    assert first == again
    assert all(first[name] != other[name] for name in first if name.startswith(CLASS_NAMES))


def paper_far(image: Image.Image) -> np.ndarray:
    """Where a strip is far from its paper, the colour of its top and bottom rows in each column."""
    pixels = np.asarray(image, np.int32)
    paper = (pixels[:2].mean(axis=0) + pixels[-2:].mean(axis=0)) / 2
    return np.abs(pixels - paper).sum(axis=2) > 60


def test_strip_masks_line_up_with_the_leaf():
    """Equal generators draw one scene, so the leaf of a Brownspot or Leafsmut strip (far from the
    paper) is the leaf of the Bacterialblight strip too, whose pale streaks can pass for paper."""
    for k in range(6):
        drawn = {name: draw_image_and_mask(np.random.default_rng([2, k]), name, 48, "strip") for name in CLASS_NAMES}
        leaf = binary_grown(paper_far(drawn["Brownspot"][0]) | paper_far(drawn["Leafsmut"][0]))
        assert 0.1 < leaf.mean() < 0.7
        for name, (image, mask) in drawn.items():
            assert mask.mode == "L" and mask.size == image.size
            lesions = np.asarray(mask) > 0
            assert set(np.unique(np.asarray(mask))) <= {0, 255}
            assert lesions.any(), name
            assert not (lesions & ~leaf).any(), name  # lesion pixels lie on the leaf only


def test_strip_classes_differ_in_the_colour_of_their_lesions():
    means = {}
    for name in CLASS_NAMES:
        fractions = [colour_fractions(draw_image(np.random.default_rng(k), name, 64, "strip")) for k in range(8)]
        means[name] = {colour: np.mean([f[colour] for f in fractions]) for colour in fractions[0]}
    for name, colour in LESION_COLOURS.items():
        others = [means[other][colour] for other in CLASS_NAMES if other != name]
        assert means[name][colour] > 2 * max(others), (name, colour, means)


def test_crop_classes_are_small_squares_cut_from_strips(tmp_path):
    synthesize_dataset(
        tmp_path / "images",
        per_class=4,
        size=48,
        seed=1,
        masks=tmp_path / "masks",
        shape="strip",
        crop_classes=("Leafsmut",),
    )
    images, masks = image_sizes(tmp_path / "images"), image_sizes(tmp_path / "masks")
    assert images == masks
    tiles = [size for name, size in images.items() if name.startswith("Leafsmut")]
    strips = [size for name, size in images.items() if not name.startswith("Leafsmut")]
    assert len(tiles) == 4 and len(strips) == 8
    assert all(width == height for width, height in tiles)
    assert all(width > 2 * height for width, height in strips)
    assert max(side for side, _ in tiles) < min(height for _, height in strips)  # the size tells the class
    for path in sorted((tmp_path / "masks" / "Leafsmut").iterdir()):  # cut around the disease
        with Image.open(path) as mask:
            assert np.asarray(mask).any()


@pytest.mark.parametrize(
    ("bad", "argument"),
    [
        ({"shape": "oval"}, "shape"),
        ({"shape": "strip", "size": 31}, "size"),
        ({"shape": "strip", "size": 1025}, "size"),
        ({"shape": "strip", "crop_classes": ("Healthy",)}, "'Healthy'"),
        ({"crop_classes": ("Leafsmut",)}, "shape must be 'strip'"),
    ],
)
def test_bad_shapes_raise_naming_the_argument(tmp_path, bad, argument):
    arguments = {"out": tmp_path / "data", "per_class": 1, "size": 32, "seed": 0} | bad
    with pytest.raises(ValueError, match=argument):
        synthesize_dataset(**arguments)
    assert not (tmp_path / "data").exists()
