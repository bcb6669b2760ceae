"""The model registry as the services see it: names and defaults, no torch.

The trainer holds the builders (services/trainer/models.py) under the same names, and checks
when it is imported that both registries list the same models.
"""

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ModelInfo:
    name: str
    description: str
    feature_extraction: bool = False
    weights: str = "none"
    # The side of the square its images are resized to by default (JobSpec.image_size).
    image_size: int = 224


MODELS: dict[str, ModelInfo] = {
    "custom_cnn": ModelInfo(
        "custom_cnn",
        "3 Conv-BN-ReLU blocks, global average pooling, head 128 → 64 → C; trained from scratch",
        # Paddy's real-photo figures are at 128 px (bench/real_photos.py, docs/benchmarks.md);
        # 224 px holds 3× the pixels, so about 3× the training time on a CPU.
        image_size=128,
    ),
    "resnet50": ModelInfo(
        "resnet50",
        "torchvision ResNet50 backbone (frozen by default), head 2048 → 64 → C",
        feature_extraction=True,
        weights="imagenet",
    ),
    "vgg16": ModelInfo(
        "vgg16",
        "torchvision VGG16 features + adaptive average pooling, head 512 → 64 → C",
        feature_extraction=True,
        weights="imagenet",
    ),
    "mobilenet_v2": ModelInfo(
        "mobilenet_v2",
        "torchvision MobileNetV2 features, head 1280 → 256 → C",
        feature_extraction=True,
        weights="imagenet",
    ),
}

# Models that start from ImageNet weights by default: those `paddy weights` fetches.
TRANSFER_MODELS: tuple[str, ...] = tuple(name for name, info in MODELS.items() if info.weights == "imagenet")

# The model_name of every ensemble run (POST /ensembles). It trains nothing, so it is no entry of
# MODELS, yet its runs are listed, filtered and compared like theirs.
EnsembleName = Literal["ensemble"]
ENSEMBLE: EnsembleName = "ensemble"
