"""The model registry as the services see it: names and defaults, no torch.

The trainer holds the builders (services/trainer/models.py) under the same names; a test
checks that both registries list the same models.
"""

from dataclasses import dataclass


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
