"""Grad-CAM heatmaps: where in a photo a model looked for the class it gave.

Each map is a guided HiResCAM, made with the `grad-cam` library (pytorch_grad_cam): the HiResCAM
map of the class on one layer of the model (which region: each activation times its own
gradient, summed over channels; Grad-CAM instead weighs a channel by its mean gradient), times
the guided-backpropagation gradient of the class score at every input pixel, its magnitude summed
over the colour channels (GuidedBackpropReLUModel: which pixels of that region), as Guided
Grad-CAM multiplies the two. A layer's map has one value per cell of that layer, and a lesion can
be a pixel or two across: the product points at pixels.

The layer (TARGET_LAYERS) is the last convolutional stage, before its last pooling where there is
one; for the custom CNN it is the second block, before its pooling (a cell every 2 pixels), which
put most heat on the lesions of synthetic leaves (bench/gradcam_focus.py, docs/benchmarks.md).
Guided backpropagation stops negative gradients at every nn.ReLU; MobileNetV2's ReLU6 are left as
they are, so its pixels get the plain gradient. An ensemble's map is the mean of its members'
maps for the class the ensemble gave, as soft voting means their probabilities.

A map is an H×W float array at the model's input size, 0 where the model saw nothing for the
class and 1 where it saw the most. `overlay` draws it over the photo for people.
"""

import io
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch import nn

if TYPE_CHECKING:
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from services.trainer.data import ImageTensors, iterate_batches
from services.trainer.engine import TrainSetup, prepare_inputs
from shared.images import Geometry

# Images per backward pass: a ResNet50 at 224 px keeps every activation of the batch.
BATCH_SIZE = 16
# How much of the overlay is the heatmap's colour where the heat is highest.
OVERLAY_OPACITY = 0.55


@dataclass(frozen=True)
class Explained:
    """A model to make maps for: a training run's model, or one member of an ensemble."""

    model: nn.Module
    model_name: str
    geometry: Geometry
    setup: TrainSetup

    @classmethod
    def of(cls, member: Any) -> "Explained":
        """From anything with a model, a spec and a setup: an ensemble's Member, a Predictor's member."""
        return cls(member.model, member.spec.model_name, member.spec.geometry, member.setup)


def explain(
    models: Sequence[Explained], decoded: Mapping[Geometry, ImageTensors], classes: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Photos (N×H×W×3 uint8) and their maps (N×H×W) for the class given with each image.

    decoded: the images in every model's input geometry; photos and maps come in the largest
    (most pixels). With several models (an ensemble) each image's map is the mean of theirs,
    resized to that geometry (members that fit photos by different resize modes frame them
    differently, so their maps are averaged as they are, not re-aligned).
    """
    largest = max((model.geometry for model in models), key=lambda g: (g.height * g.width, g))
    per_model = [class_heatmaps(m.model, m.model_name, m.setup, decoded[m.geometry], classes) for m in models]
    shape = (largest.height, largest.width)
    if len(per_model) == 1:
        maps = per_model[0]
    else:
        maps = np.stack([mean_heatmap([own[i] for own in per_model], shape) for i in range(len(classes))])
    photos = decoded[largest].images.permute(0, 2, 3, 1).cpu().numpy()
    return photos, maps.reshape(len(classes), *shape)


# Each family's layer whose activations and gradients make the map (nn.Module.get_submodule names).
TARGET_LAYERS = {
    "custom_cnn": "1.2",  # the second block's ReLU, before its max pooling: a cell every 2 pixels
    "resnet50": "layer4.2",  # the last bottleneck
    "vgg16": "features.29",  # the last ReLU, before the last max pooling
    "mobilenet_v2": "features.18",  # the last 1×1 convolution block
}


def target_layer(model: nn.Module, model_name: str) -> nn.Module:
    try:
        return model.get_submodule(TARGET_LAYERS[model_name])
    except KeyError:
        raise ValueError(f"no Grad-CAM layer known for model {model_name!r}") from None


def class_heatmaps(
    model: nn.Module, model_name: str, setup: TrainSetup, images: ImageTensors, classes: Sequence[int]
) -> np.ndarray:
    """One map per image (N×H×W float32 in 0..1) for the class given with it, in order.

    Gradients flow from the input even where the backbone is frozen (feature extraction), so a
    map exists for every run. fp32 throughout: a map is a difference of small gradients.
    """
    if len(classes) != len(images):
        raise ValueError(f"{len(images)} images and {len(classes)} classes do not line up")
    if not len(images):
        return np.empty((0, *images.images.shape[2:]), np.float32)
    was_training = model.training
    batches = [batch for batch, _labels in iterate_batches(images, BATCH_SIZE)]
    batch_classes = [
        [int(c) for c in classes[start : start + BATCH_SIZE]] for start in range(0, len(classes), BATCH_SIZE)
    ]
    from pytorch_grad_cam import HiResCAM  # imported when needed: it loads scikit-learn and OpenCV (3 s)

    with HiResCAM(model=model, target_layers=[target_layer(model, model_name)]) as cam, torch.enable_grad():
        regions = [
            cam(input_tensor=prepare_inputs(batch, setup).float().requires_grad_(True), targets=_targets(chosen))
            for batch, chosen in zip(batches, batch_classes, strict=True)
        ]
    with torch.enable_grad():
        pixels = [
            guided_gradients(model, prepare_inputs(batch, setup).float(), chosen)
            for batch, chosen in zip(batches, batch_classes, strict=True)
        ]
    model.train(was_training)
    maps = np.concatenate(regions) * np.concatenate(pixels)
    peaks = maps.reshape(len(maps), -1).max(axis=1)
    return (maps / np.maximum(peaks, 1e-12)[:, None, None]).astype(np.float32)


def _targets(classes: Sequence[int]) -> list["ClassifierOutputTarget"]:
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    return [ClassifierOutputTarget(c) for c in classes]


def guided_gradients(model: nn.Module, inputs: torch.Tensor, classes: Sequence[int]) -> np.ndarray:
    """N×H×W: the magnitude of each pixel's guided-backpropagation gradient of its class's score."""
    from pytorch_grad_cam import GuidedBackpropReLUModel

    guided = GuidedBackpropReLUModel(model, device=None)
    with relus_kept(model):
        return np.stack([np.abs(guided(image[None], c)).sum(axis=-1) for image, c in zip(inputs, classes, strict=True)])


@contextmanager
def relus_kept(model: nn.Module) -> Iterator[None]:
    """Put the model's own nn.ReLU modules back afterwards.

    GuidedBackpropReLUModel swaps them for its guided ReLU during a call and then for one new
    ReLU shared by every place: a CAM hooked on one of them later would see them all.
    """
    relus = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if isinstance(child, nn.ReLU)
    ]
    try:
        yield
    finally:
        for parent, name, child in relus:
            setattr(parent, name, child)


def mean_heatmap(maps: Sequence[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """Members' maps of one image (each at its member's input size) averaged at size (H, W)."""
    resized = [np.asarray(Image.fromarray(m).resize(size[::-1], Image.Resampling.BILINEAR)) for m in maps]
    mean = np.mean(resized, axis=0)
    return (mean / max(float(mean.max()), 1e-7)).astype(np.float32)


def share_inside(heat: np.ndarray, mask: np.ndarray) -> float:
    """The part of a map's total heat that lies on the mask's pixels (mask: bool, same H×W)."""
    total = float(heat.sum())
    return float(heat[mask].sum()) / total if total > 0 else 0.0


def colormap(heat: np.ndarray) -> np.ndarray:
    """H×W in 0..1 → H×W×3 uint8, dark blue (nothing) through green and yellow to red (most)."""
    stops = np.array([[0, 0, 130], [0, 90, 255], [0, 220, 160], [255, 230, 0], [230, 30, 0]], np.float32)
    scaled = np.clip(heat, 0, 1) * (len(stops) - 1)
    low = np.floor(scaled).astype(int).clip(0, len(stops) - 2)
    fraction = (scaled - low)[..., None]
    return (stops[low] * (1 - fraction) + stops[low + 1] * fraction).astype(np.uint8)


def overlay(photo: np.ndarray, heat: np.ndarray) -> Image.Image:
    """The photo (H×W×3 uint8) with the map over it: opaque where hot, clear where cold."""
    alpha = (OVERLAY_OPACITY * np.clip(heat, 0, 1))[..., None]
    blended = photo.astype(np.float32) * (1 - alpha) + colormap(heat).astype(np.float32) * alpha
    return Image.fromarray(blended.round().astype(np.uint8))


def overlay_jpeg(photo: np.ndarray, heat: np.ndarray) -> bytes:
    out = io.BytesIO()
    overlay(photo, heat).save(out, format="JPEG", quality=85)
    return out.getvalue()
