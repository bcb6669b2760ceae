"""Heatmaps for each model family (services/trainer/gradcam.py), the overlays a run keeps
when it completes (run_heatmaps.py), and the lesion-focus figure of bench/gradcam_focus.py."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from pytorch_grad_cam import HiResCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from services.trainer.data import ImageTensors
from services.trainer.engine import make_setup, prepare_inputs
from services.trainer.gradcam import (
    Explained,
    class_heatmaps,
    explain,
    guided_gradients,
    mean_heatmap,
    overlay,
    share_inside,
)
from services.trainer.models import build_model
from services.trainer.run_heatmaps import choose_images, overlay_name
from shared.images import Geometry
from shared.schemas.jobs import JobSpec

SIZE = 64


def images(count: int, seed: int = 0) -> ImageTensors:
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (count, 3, SIZE, SIZE), dtype=torch.uint8, generator=generator)
    return ImageTensors(pixels, torch.zeros(count, dtype=torch.int64))


def explained(model_name: str, feature_extraction: bool = False) -> Explained:
    spec = JobSpec(
        model_name=model_name,
        dataset="any",
        image_size=SIZE,
        weights="none",
        feature_extraction=feature_extraction,
        mixed_precision=False,
    )
    torch.manual_seed(0)
    model = build_model(spec, 3).eval()
    return Explained(model, model_name, Geometry(SIZE, SIZE), make_setup(spec, torch.device("cpu")))


@pytest.mark.parametrize("model_name", ["custom_cnn", "resnet50", "vgg16", "mobilenet_v2"])
def test_every_family_gets_one_map_per_image_at_its_input_size(model_name):
    # Transfer models as jobs train them by default: the backbone frozen, gradients from the input.
    model = explained(model_name, feature_extraction=model_name != "custom_cnn")
    maps = class_heatmaps(model.model, model_name, model.setup, images(3), [0, 1, 2])
    assert maps.shape == (3, SIZE, SIZE) and maps.dtype == np.float32
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
    assert all(m.max() == pytest.approx(1, abs=1e-3) or m.max() == 0 for m in maps)
    assert not model.model.training  # the model is left as it was found, ready to predict


def test_the_map_is_the_given_class_s():
    model = explained("custom_cnn")
    same = images(1)
    maps = [class_heatmaps(model.model, "custom_cnn", model.setup, same, [c])[0] for c in range(3)]
    assert not np.allclose(maps[0], maps[1]) or not np.allclose(maps[1], maps[2])
    with pytest.raises(ValueError, match="do not line up"):
        class_heatmaps(model.model, "custom_cnn", model.setup, images(2), [0])


def test_the_map_is_the_layer_s_map_times_each_pixel_s_guided_gradient():
    # The layer's map has one value per 2×2 cell of the custom CNN's second block; the guided
    # gradient tells the pixels of a cell apart.
    model = explained("custom_cnn")
    batch, classes = images(2), [0, 2]
    maps = class_heatmaps(model.model, "custom_cnn", model.setup, batch, classes)
    inputs = prepare_inputs(batch.images, model.setup).float()
    targets = [ClassifierOutputTarget(c) for c in classes]
    with HiResCAM(model=model.model, target_layers=[model.model.get_submodule("1.2")]) as cam, torch.enable_grad():
        regions = cam(input_tensor=inputs.clone().requires_grad_(True), targets=targets)
    with torch.enable_grad():
        expected = regions * guided_gradients(model.model, inputs, classes)
    expected /= expected.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(maps, expected, atol=1e-5)
    assert not np.allclose(maps, regions / regions.max(axis=(1, 2), keepdims=True), atol=0.05)


def test_making_maps_leaves_the_model_as_it_was():
    model = explained("custom_cnn")
    modules = list(model.model.modules())
    batch = images(4)
    with torch.inference_mode():
        before = model.model(prepare_inputs(batch.images, model.setup))
    first = class_heatmaps(model.model, "custom_cnn", model.setup, batch, [0, 1, 2, 0])
    assert list(model.model.modules()) == modules  # the same ReLUs, not the guided pass's
    second = class_heatmaps(model.model, "custom_cnn", model.setup, batch, [0, 1, 2, 0])
    np.testing.assert_allclose(second, first, atol=1e-5)  # a cached model's next maps are the same
    with torch.inference_mode():
        assert torch.equal(model.model(prepare_inputs(batch.images, model.setup)), before)


def test_an_ensemble_map_is_its_members_mean_at_the_largest_size():
    small = explained("custom_cnn")
    small = Explained(small.model, small.model_name, Geometry(32, 32), small.setup)
    large = explained("custom_cnn")
    decoded = {
        Geometry(32, 32): ImageTensors(
            torch.nn.functional.interpolate(images(2).images.float(), size=32).to(torch.uint8), torch.zeros(2)
        ),
        Geometry(SIZE, SIZE): images(2),
    }
    photos, maps = explain([small, large], decoded, [1, 2])
    assert photos.shape == (2, SIZE, SIZE, 3) and photos.dtype == np.uint8
    assert maps.shape == (2, SIZE, SIZE) and maps.max() == pytest.approx(1, abs=1e-3)
    mean = mean_heatmap([np.zeros((32, 32), np.float32), np.ones((SIZE, SIZE), np.float32)], (SIZE, SIZE))
    assert mean.shape == (SIZE, SIZE) and mean.max() == pytest.approx(1)


def test_heat_inside_a_mask():
    mask = np.zeros((10, 10), bool)
    mask[:5] = True
    assert share_inside(mask.astype(np.float32), mask) == 1  # a map that is the mask
    assert share_inside(np.ones((10, 10), np.float32), mask) == pytest.approx(0.5)  # no focus at all
    assert share_inside(np.zeros((10, 10), np.float32), mask) == 0


def test_an_overlay_is_red_where_hot_and_the_photo_where_cold():
    photo = np.full((4, 4, 3), 128, np.uint8)
    heat = np.zeros((4, 4), np.float32)
    heat[0, 0] = 1
    drawn = np.asarray(overlay(photo, heat))
    assert drawn[0, 0, 0] > 170 and drawn[0, 0, 2] < 90
    assert (drawn[3, 3] == 128).all()


def test_kept_images_are_the_mistakes_first_then_correct_ones_from_every_class():
    labels = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    predicted = [0, 1, 0, 0, 1, 1, 2, 1, 2, 2]
    chosen = choose_images(labels, predicted, 6)
    assert chosen[:2] == [1, 6] and len(chosen) == 6 == len(set(chosen))
    assert {labels[row] for row in chosen[2:]} == {0, 1, 2}  # the sample covers every class
    assert all(labels[row] == predicted[row] for row in chosen[2:])
    assert choose_images(labels, predicted, 1) == [1]
    assert choose_images(labels, predicted, 0) == []
    assert sorted(choose_images(labels, predicted, 100)) == list(range(10))


def test_overlay_names_are_fixed_length_hashes():
    assert overlay_name("Brownspot/0001.png") != overlay_name("Leafsmut/0001.png")
    assert len(overlay_name("a/" * 200)) == 24 and overlay_name("x").endswith(".jpg")


def test_the_lesion_focus_bench_prints_its_figure(tmp_path):
    """A tiny run of bench/gradcam_focus.py: the figure is measured and printed with its goal."""
    completed = subprocess.run(
        [sys.executable, "-m", "bench.gradcam_focus", "--per-class", "12", "--image-size", "48", "--epochs", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = completed.stdout.splitlines()
    [figure] = [line for line in lines if line.startswith("heat on lesions ")]
    share = float(figure.split()[3])
    assert 0 < share < 1
    assert completed.returncode == (0 if share >= 0.6 else 1), completed.stderr[-2000:]
    [on_grid] = [line for line in lines if line.startswith("heat on lesion cells ")]
    assert 0 < float(on_grid.split()[4]) < 1 and "2-pixel grid" in on_grid  # custom_cnn's second block: 1/2 the input
    assert any(line.startswith("Leafsmut") for line in lines)
