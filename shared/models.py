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


MODELS: dict[str, ModelInfo] = {
    "custom_cnn": ModelInfo(
        "custom_cnn",
        "3 Conv-BN-ReLU blocks, global average pooling, head 128 → 64 → C; trained from scratch",
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
