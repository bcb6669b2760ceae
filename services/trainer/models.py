"""Model builders, one registry. Every model ends in the same head (classifier_head)."""

from collections.abc import Callable

from torch import nn

from shared.schemas.jobs import JobSpec


def classifier_head(in_features: int, hidden: int, num_classes: int, dropout: float | None) -> nn.Sequential:
    """Linear → BatchNorm → ReLU → Dropout → Linear, as in the original study."""
    layers: list[nn.Module] = [nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(hidden, num_classes))
    return nn.Sequential(*layers)


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


def custom_cnn(spec: JobSpec, num_classes: int) -> nn.Module:
    """3 Conv-BN-ReLU blocks, global average pooling, head 128 → 64 → C."""
    return nn.Sequential(
        _conv_block(3, 32),
        _conv_block(32, 64),
        _conv_block(64, 128),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        classifier_head(128, 64, num_classes, spec.dropout),
    )


MODEL_BUILDERS: dict[str, Callable[[JobSpec, int], nn.Module]] = {
    "custom_cnn": custom_cnn,
}


def build_model(spec: JobSpec, num_classes: int) -> nn.Module:
    try:
        builder = MODEL_BUILDERS[spec.model_name]
    except KeyError:
        raise ValueError(
            f"unknown model {spec.model_name!r}; choose one of {sorted(MODEL_BUILDERS)}"
        ) from None
    return builder(spec, num_classes)
