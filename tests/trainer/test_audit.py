"""The dataset audit on generated leaves with planted findings: per-class profiles, unreadable
files, exact copies within and across classes, near copies under each transformation grouped
with their source, distinct photos left alone, label conflicts, and shortcut warnings."""

import io
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from services.trainer.audit import audit_dataset, find_copy_groups
from shared.datasets.imagefolder import DatasetError, scan_image_folder
from shared.datasets.synth import CLASS_NAMES, draw_image
from shared.schemas.datasets import DatasetAudit

BLIGHT, SPOT, SMUT = CLASS_NAMES
SIDE = 192
PER_CLASS = 12


def leaf(class_name: str, i: int, side: int = SIDE, seed: int = 0) -> Image.Image:
    return draw_image(np.random.default_rng([seed, CLASS_NAMES.index(class_name), i]), class_name, side)


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def crop(image: Image.Image, area: float) -> Image.Image:
    """A crop keeping `area` of the image, off-centre."""
    side = area**0.5
    width, height = round(image.width * side), round(image.height * side)
    return image.crop((image.width - width, 0, image.width, height))


def colour(image: Image.Image) -> Image.Image:
    image = ImageEnhance.Brightness(image).enhance(1.3)
    image = ImageEnhance.Contrast(image).enhance(0.7)
    return ImageEnhance.Color(image).enhance(1.3)


# One source per transformation (Brownspot image i+1 → "Brownspot/<name>.jpg").
TRANSFORMS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "rotated": lambda im: im.rotate(37, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=(0, 0, 0)),
    "rotated-in-frame": lambda im: im.rotate(-123, resample=Image.Resampling.BILINEAR, fillcolor=(255, 255, 255)),
    "mirrored": ImageOps.mirror,
    "flipped": ImageOps.flip,
    "cropped": lambda im: crop(im, 0.58),
    "rescaled": lambda im: im.resize((448, 448), Image.Resampling.BICUBIC),
    "recoloured": colour,
    "reencoded": lambda im: jpeg(im, 55),
    "all-at-once": lambda im: jpeg(
        colour(crop(ImageOps.mirror(im.rotate(200, expand=True)), 0.7)).resize((300, 240)), 70
    ),
}


class Planted(NamedTuple):
    root: Path
    audit: DatasetAudit
    progress: list[tuple[str, int, int]]  # what the audit reported, in order


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Planted:
    """Distinct leaves, PER_CLASS per class, plus: a near copy of a Brownspot leaf under each
    transformation, a byte copy within Leafsmut, a byte copy of a blight leaf filed as Leafsmut,
    a turned copy of a smut leaf filed as blight, and a broken file."""
    root = tmp_path_factory.mktemp("planted")
    for class_name in CLASS_NAMES:
        (root / class_name).mkdir()
        for i in range(PER_CLASS):
            leaf(class_name, i).save(root / class_name / f"{i:04d}.png")
    for i, (name, transform) in enumerate(TRANSFORMS.items(), start=1):
        transform(Image.open(root / SPOT / f"{i:04d}.png").convert("RGB")).save(root / SPOT / f"{name}.jpg", quality=92)
    shutil.copyfile(root / SMUT / "0000.png", root / SMUT / "byte-copy.png")
    shutil.copyfile(root / BLIGHT / "0001.png", root / SMUT / "blight-filed-as-smut.png")
    TRANSFORMS["rotated"](Image.open(root / SMUT / "0002.png")).save(root / BLIGHT / "smut-filed-as-blight.jpg")
    (root / SPOT / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    progress: list[tuple[str, int, int]] = []
    audit = audit_dataset(root, "planted", lambda *report: progress.append(report))
    return Planted(root, audit, progress)


def group_of(audit: DatasetAudit, file: str) -> set[str]:
    return {f for group in audit.copy_groups if file in group.files for f in group.files}


def test_each_class_is_profiled_over_its_readable_images(planted):
    audit = planted.audit
    profiles = {p.name: p for p in audit.class_profiles}
    assert list(profiles) == list(CLASS_NAMES)
    assert profiles[BLIGHT].images == PER_CLASS + 1
    assert profiles[SPOT].images == PER_CLASS + len(TRANSFORMS)  # the broken file is not counted
    assert profiles[SMUT].images == PER_CLASS + 2
    assert profiles[SPOT].formats == {"JPEG": len(TRANSFORMS), "PNG": PER_CLASS}
    assert profiles[SMUT].width.min == profiles[SMUT].width.max == SIDE
    assert profiles[SPOT].width.max == 448  # the rescaled copy
    assert profiles[SPOT].aspect_ratio.max > 1  # the crop of a turned leaf
    assert profiles[SMUT].file_bytes.min > 1000
    assert audit.images == 3 * PER_CLASS + len(TRANSFORMS) + 4


def test_an_unreadable_file_is_listed(planted):
    audit = planted.audit
    assert audit.unreadable == [f"{SPOT}/broken.jpg"]


def test_byte_copies_form_exact_groups_within_and_across_classes(planted):
    audit = planted.audit
    exact = {tuple(group.files): group for group in audit.copy_groups if group.kind == "exact"}
    assert set(exact) == {
        (f"{SMUT}/0000.png", f"{SMUT}/byte-copy.png"),
        (f"{BLIGHT}/0001.png", f"{SMUT}/blight-filed-as-smut.png"),
    }
    assert not exact[(f"{SMUT}/0000.png", f"{SMUT}/byte-copy.png")].label_conflict
    assert exact[(f"{BLIGHT}/0001.png", f"{SMUT}/blight-filed-as-smut.png")].classes == [BLIGHT, SMUT]


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_a_transformed_copy_is_grouped_with_its_source_alone(planted, name):
    audit = planted.audit
    source = f"{SPOT}/{list(TRANSFORMS).index(name) + 1:04d}.png"
    assert group_of(audit, source) == {source, f"{SPOT}/{name}.jpg"}


def test_distinct_leaves_are_in_no_group(planted):
    root, audit = planted.root, planted.audit
    grouped = set(audit.groups())
    copied = {f"{SPOT}/{i:04d}.png" for i in range(1, len(TRANSFORMS) + 1)}
    copied |= {f"{SMUT}/0000.png", f"{BLIGHT}/0001.png", f"{SMUT}/0002.png"}
    distinct = {p.relative_to(root).as_posix() for p in root.glob("*/0*.png")} - copied
    assert len(distinct) > 2 * PER_CLASS - len(TRANSFORMS)
    assert grouped & distinct == set()


def test_a_copy_across_classes_is_a_label_conflict_listed_first(planted):
    audit = planted.audit
    conflicts = {tuple(group.files) for group in audit.label_conflicts}
    assert conflicts == {
        (f"{BLIGHT}/0001.png", f"{SMUT}/blight-filed-as-smut.png"),
        (f"{BLIGHT}/smut-filed-as-blight.jpg", f"{SMUT}/0002.png"),
    }
    assert all(group.label_conflict for group in audit.copy_groups[: len(conflicts)])


def test_the_trainer_finds_the_same_groups_from_a_scanned_index(planted):
    root, audit = planted.root, planted.audit
    assert find_copy_groups(scan_image_folder(root), workers=1) == audit.copy_groups


def test_progress_reports_every_phase_up_to_its_total(planted):
    _, audit, phases = planted
    assert [p for p in dict.fromkeys(phase for phase, _, _ in phases)] == [
        "reading",
        "indexing",
        "matching",
        "shortcuts",
    ]
    for phase in ("reading", "indexing", "matching", "shortcuts"):
        reports = [(done, total) for name, done, total in phases if name == phase]
        assert reports[-1][0] == reports[-1][1]
        assert all(done <= total for done, total in reports)
    assert ("reading", audit.images, audit.images) in phases


def test_a_size_shortcut_is_warned_with_the_property_and_its_accuracy(tmp_path):
    """One class photographed whole (long strips), the others as small square crops."""
    for class_name in CLASS_NAMES:
        (tmp_path / class_name).mkdir()
        for i in range(12):
            image = leaf(class_name, i, side=160)
            if class_name == BLIGHT:
                image = image.resize((480, 140))
            else:
                image = image.crop((20, 20, 116, 116))
            image.save(tmp_path / class_name / f"{i}.png")
    audit = audit_dataset(tmp_path, "shortcut")
    warned = {w.feature: w for w in audit.shortcuts}
    assert {"width", "height", "aspect_ratio"} <= set(warned)
    width = warned["width"]
    assert width.accuracy >= 0.6 and width.chance == pytest.approx(1 / 3, abs=0.01)
    assert "image width" in width.message and "480" in width.message and BLIGHT in width.message


def test_a_dataset_without_a_shortcut_is_not_warned(tmp_path):
    """Same size and format everywhere, and the folders' leaves drawn without regard to their class."""
    rng = np.random.default_rng(5)
    for class_name in CLASS_NAMES:
        (tmp_path / class_name).mkdir()
        for i in range(12):
            drawn = CLASS_NAMES[int(rng.integers(3))]
            draw_image(np.random.default_rng([9, CLASS_NAMES.index(class_name), i]), drawn, 96).save(
                tmp_path / class_name / f"{i}.png"
            )
    assert audit_dataset(tmp_path, "fair").shortcuts == []


def test_the_same_dataset_gives_the_same_audit(planted):
    root, audit = planted.root, planted.audit
    again = audit_dataset(root, "planted", workers=1)
    assert again.copy_groups == audit.copy_groups
    assert again.shortcuts == audit.shortcuts
    assert again.class_profiles == audit.class_profiles


def test_a_folder_that_is_no_dataset_is_refused(tmp_path):
    (tmp_path / "only-class").mkdir()
    with pytest.raises(DatasetError, match="class folder"):
        audit_dataset(tmp_path, "empty")
