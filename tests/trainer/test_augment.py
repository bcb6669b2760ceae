"""Batched augmentation: per-image draws, reproducible, and the same operations as torchvision's."""

import pytest
import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from services.trainer.augment import (
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    crop_matrices,
    geometry_matrices,
    make_augment,
    tta_views,
    warp,
)

KINDS = ["original", "crops", "flips", "none"]


def images(n: int = 6, height: int = 40, width: int = 48, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, height, width, generator=torch.Generator().manual_seed(seed))


def seeded(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def matrices(flip_h, flip_v, angles, shifts, height, width) -> torch.Tensor:
    dx, dy = zip(*shifts)
    return geometry_matrices(
        torch.tensor(flip_h),
        torch.tensor(flip_v),
        torch.tensor(angles),
        (torch.tensor(dx, dtype=torch.float32), torch.tensor(dy, dtype=torch.float32)),
        height,
        width,
    )


@pytest.mark.parametrize("kind", KINDS)
def test_shape_dtype_and_range_are_kept(kind):
    batch = images(n=5, height=37, width=53)
    out = make_augment(kind)(batch, seeded(1))
    assert out.shape == batch.shape and out.dtype == batch.dtype
    assert out.min() >= 0 and out.max() <= 1


def test_none_is_the_identity():
    batch = images()
    assert torch.equal(make_augment("none")(batch, seeded(1)), batch)


def test_flips_give_one_of_the_four_mirror_images_per_image():
    batch = images(n=16)
    out = make_augment("flips")(batch, seeded(3))
    seen = set()
    for original, flipped in zip(batch, out):
        variants = {"same": original, "h": original.flip(-1), "v": original.flip(-2), "hv": original.flip(-1, -2)}
        matches = [name for name, variant in variants.items() if torch.equal(flipped, variant)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 1, "every image got the same flips: parameters drawn per batch?"


@pytest.mark.parametrize("kind", ["original", "crops"])
def test_random_kinds_draw_their_parameters_per_image(kind):
    one = images(n=1)
    out = make_augment(kind)(one.expand(8, -1, -1, -1).contiguous(), seeded(4))
    for i in range(8):
        for j in range(i + 1, 8):
            assert not torch.allclose(out[i], out[j]), (i, j)


@pytest.mark.parametrize("kind", KINDS)
def test_the_same_generator_state_gives_the_same_output(kind):
    batch = images()
    augment = make_augment(kind)
    assert torch.equal(augment(batch, seeded(7)), augment(batch, seeded(7)))


def test_a_different_seed_gives_a_different_output():
    batch, augment = images(), make_augment("original")
    assert not torch.equal(augment(batch, seeded(7)), augment(batch, seeded(8)))


def test_the_generator_advances_between_batches():
    batch, augment, generator = images(), make_augment("original"), seeded(7)
    assert not torch.equal(augment(batch, generator), augment(batch, generator))


@pytest.mark.parametrize("angle", [17.0, -25.0, 43.0])
def test_rotation_turns_about_the_image_centre(angle):
    batch = images(n=1, height=33, width=33)  # odd sizes: the centre is a pixel centre
    out = warp(batch, matrices([False], [False], [angle], [(0, 0)], 33, 33))
    assert torch.allclose(out[0, :, 16, 16], batch[0, :, 16, 16], atol=1e-5)
    assert not torch.allclose(out, batch, atol=1e-2)


def test_translation_moves_whole_pixels_and_fills_black():
    batch = torch.ones(1, 3, 20, 30)
    out = warp(batch, matrices([False], [False], [0.0], [(5, -3)], 20, 30))[0]
    assert torch.allclose(out[:, :, :5], torch.zeros(3, 20, 5), atol=1e-5)  # uncovered on the left
    assert torch.allclose(out[:, 17:, :], torch.zeros(3, 3, 30), atol=1e-5)  # and at the bottom
    assert torch.allclose(out[:, :17, 5:], torch.ones(3, 17, 25), atol=1e-5)


@pytest.mark.parametrize("height, width", [(40, 40), (36, 60)])
def test_geometry_matches_torchvision_flip_then_affine(height, width):
    batch = images(n=3, height=height, width=width)
    params = [(True, False, -13.0, (4, -2)), (False, True, 38.0, (0, 3)), (True, True, 7.5, (-5, 0))]
    flip_h, flip_v, angles, shifts = (list(column) for column in zip(*params))
    out = warp(batch, matrices(flip_h, flip_v, angles, shifts, height, width))
    for image, result, (h, v, angle, shift) in zip(batch, out, params):
        if h:
            image = TF.horizontal_flip(image)
        if v:
            image = TF.vertical_flip(image)
        expected = TF.affine(
            image,
            angle=angle,
            translate=list(shift),
            scale=1.0,
            shear=[0.0, 0.0],
            interpolation=InterpolationMode.BILINEAR,
        )
        assert torch.allclose(result, expected, atol=1e-4)


def test_brightness_scales_each_image_by_its_own_factor():
    batch = images(n=3)
    factors = torch.tensor([0.8, 1.0, 1.2])
    out = adjust_brightness(batch, factors)
    for i, factor in enumerate(factors):
        assert torch.allclose(out[i], (batch[i] * factor).clamp(0, 1))
    assert torch.equal(out[1], batch[1])
    assert out[2].max() == 1  # clamped, not wrapped


@pytest.mark.parametrize(
    "ours, torchvision_op, factors",
    [
        (adjust_contrast, TF.adjust_contrast, [0.8, 1.0, 1.2, 0.95]),
        (adjust_saturation, TF.adjust_saturation, [0.8, 1.0, 1.2, 0.0]),
        (adjust_hue, TF.adjust_hue, [-0.1, 0.0, 0.07, 0.5]),
    ],
)
def test_colour_ops_match_torchvision_per_image(ours, torchvision_op, factors):
    batch = images(n=4)
    batch[3, :, :5] = 0.25  # a grey patch: chroma 0, hue undefined
    out = ours(batch, torch.tensor(factors))
    for i, factor in enumerate(factors):
        assert torch.allclose(out[i], torchvision_op(batch[i], factor), atol=1e-5), factor


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown augmentation 'mixup'"):
        make_augment("mixup")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda_with_a_cuda_generator_and_matches_itself():
    batch = images().cuda()
    augment = make_augment("original")
    first = augment(batch, seeded(5, "cuda"))
    assert first.device.type == "cuda"
    assert torch.equal(first, augment(batch, seeded(5, "cuda")))
    assert first.min() >= 0 and first.max() <= 1


def test_a_crop_window_reads_only_inside_itself():
    """The right half of a strip, zoomed to the whole output: every pixel comes from that half."""
    strip = torch.zeros(1, 3, 20, 80)
    strip[..., 40:] = 1  # right half white
    identity = matrices([False], [False], [0.0], [(0.0, 0.0)], 20, 80)
    half = crop_matrices(
        identity, (torch.tensor([0.5]), torch.tensor([1.0])), (torch.tensor([0.5]), torch.tensor([0.0]))
    )
    out = warp(strip, half)
    assert out[..., 1:-1].min() > 0.99  # all white, but for the blended outermost columns


def test_crops_of_a_strip_zoom_in_along_its_length():
    """A strip with a left-to-right ramp: each crop shows part of the ramp's range (its colour
    jittered), a different part per image, some of them well under the whole."""
    ramp = torch.linspace(0, 1, 120).expand(8, 3, 30, 120).contiguous()
    out = make_augment("crops")(ramp, seeded(3))
    middle = out[:, 0, 15, 10:-10]  # one row, away from rotated corners
    spans = (middle.max(1).values - middle.min(1).values).tolist()
    assert all(0.3 < span < 1.05 for span in spans), spans
    assert min(spans) < 0.75 and len({round(span, 2) for span in spans}) > 1, spans


def test_tta_views_are_the_photo_its_flips_and_two_crops_along_the_long_side():
    strip = images(n=2, height=20, width=50)
    views = tta_views(strip)
    assert len(views) == 5 and all(view.shape == strip.shape for view in views)
    assert (
        torch.equal(views[0], strip) and torch.equal(views[1], strip.flip(-1)) and torch.equal(views[2], strip.flip(-2))
    )
    left = torch.nn.functional.interpolate(strip[..., :45], size=(20, 50), mode="bilinear", align_corners=False)
    assert torch.allclose(views[3], left)
    tall = images(n=1, height=50, width=20)
    top = torch.nn.functional.interpolate(tall[..., :45, :], size=(50, 20), mode="bilinear", align_corners=False)
    assert torch.allclose(tta_views(tall)[3], top)
