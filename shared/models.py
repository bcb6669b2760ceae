"""The model registry as the services see it: names and defaults, no torch.

The trainer holds the builders (services/trainer/models.py) under the same names; a test
checks that both registries list the same models.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelInfo:
    name: str
    description: str
    dropout: float | None = 0.5
    feature_extraction: bool = False


MODELS: dict[str, ModelInfo] = {
    "custom_cnn": ModelInfo(
        "custom_cnn",
        "3 Conv-BN-ReLU blocks, global average pooling, Linear-BN-ReLU-Dropout-Linear head",
    ),
}
