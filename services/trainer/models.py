"""Model builders, one registry keyed by shared.models.MODELS. Every model ends in the same head (classifier_head).

The transfer models keep torchvision's parameter names for their backbone (resnet50: torchvision's
ResNet with `fc` replaced by the head; vgg16 and mobilenet_v2: `features.*`), so torchvision's
ImageNet files load into them as they are. build_model then loads spec.weights and, with
spec.feature_extraction, freezes the backbone but its last spec.trainable_layers blocks.

spec.weights:
- "none": random initialization (torchvision's own for the backbones).
- "imagenet": torchvision's file from its cache, downloaded when missing (services/trainer/weights.py).
- a path to a torch.save'd state dict (or a Paddy checkpoint, whose "model" is used) inside
  the weights root (PADDY_WEIGHTS_ROOT; nothing outside it is opened): a Paddy
  model's whole state dict, head included, when every key and shape matches this model; else a
  backbone, with torchvision's parameter names (a torchvision file, or a Paddy model of another
  class count), whose head and torchvision classifier keys are skipped: every backbone key must
  be there with its shape, and the head keeps its fresh initialization.
"""

import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from shared.models import MODELS
from shared.paths import resolve_weights_file, shown
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


class PooledFeatures(nn.Module):
    """A torchvision `features` stack, global average pooling, then the head (vgg16, mobilenet_v2).

    block_starts: where each backbone block (the unit of trainable_layers) begins in features.
    """

    def __init__(self, features: nn.Sequential, head: nn.Module, block_starts: tuple[int, ...]):
        super().__init__()
        self.features = features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.head = head
        self.block_starts = block_starts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.flatten(self.pool(self.features(x))))

    def blocks(self) -> list[nn.Module]:
        ends = (*self.block_starts[1:], len(self.features))
        return [self.features[start:end] for start, end in zip(self.block_starts, ends)]


def custom_cnn(spec: JobSpec, num_classes: int) -> nn.Module:
    """spec.cnn_blocks Conv-BN-ReLU-pool blocks of spec.cnn_width channels, doubling at each block,
    global average pooling, head → 64 → C. The original study's: 3 blocks of 32, 64, 128."""
    widths = [spec.cnn_width * 2**block for block in range(spec.cnn_blocks)]
    blocks = [_conv_block(in_channels, out_channels) for in_channels, out_channels in zip([3, *widths], widths)]
    return nn.Sequential(
        *blocks,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        classifier_head(widths[-1], 64, num_classes, spec.dropout),
    )


def resnet50(spec: JobSpec, num_classes: int) -> nn.Module:
    """torchvision's ResNet50, its fc replaced by the head 2048 → 64 → C."""
    import torchvision  # imported by the builders that need it: 2 s of every trainer's start otherwise

    model = torchvision.models.resnet50(weights=None)
    model.fc = classifier_head(2048, 64, num_classes, spec.dropout)
    return model


def vgg16(spec: JobSpec, num_classes: int) -> nn.Module:
    """torchvision's VGG16 features (5 conv blocks), average pooling, head 512 → 64 → C."""
    from torchvision.models import vgg as torchvision_vgg

    # VGG16's own classifier (120M parameters) is never used: build features alone.
    features = torchvision_vgg.make_layers(torchvision_vgg.cfgs["D"])
    for module in features.modules():
        if isinstance(module, nn.Conv2d):  # initialized as torchvision's VGG.__init__ does
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    pools = [i for i, module in enumerate(features) if isinstance(module, nn.MaxPool2d)]
    block_starts = (0, *(i + 1 for i in pools[:-1]))
    return PooledFeatures(features, classifier_head(512, 64, num_classes, spec.dropout), block_starts)


def mobilenet_v2(spec: JobSpec, num_classes: int) -> nn.Module:
    """torchvision's MobileNetV2 features (19 blocks), average pooling, head 1280 → 256 → C."""
    import torchvision

    features = torchvision.models.mobilenet_v2(weights=None).features
    head = classifier_head(1280, 256, num_classes, spec.dropout)
    return PooledFeatures(features, head, tuple(range(len(features))))


ModelBuilder = Callable[[JobSpec, int], nn.Module]


def registry(*builders: ModelBuilder) -> dict[str, ModelBuilder]:
    """The builders by model name, each named after its model, in the order of shared.models.MODELS,
    where the model names are listed: every model there has a builder and every builder a model."""
    by_name = {builder.__name__: builder for builder in builders}
    if by_name.keys() != MODELS.keys():
        raise RuntimeError(f"model builders {sorted(by_name)} do not match shared.models.MODELS {sorted(MODELS)}")
    return {name: by_name[name] for name in MODELS}


MODEL_BUILDERS = registry(custom_cnn, resnet50, vgg16, mobilenet_v2)


def build_model(spec: JobSpec, num_classes: int, weights_root: Path | None = None) -> nn.Module:
    """The spec's model for num_classes, with its weights loaded and its backbone (un)frozen.

    A state-dict path in spec.weights is looked up inside weights_root (without one, none loads).
    """
    try:
        builder = MODEL_BUILDERS[spec.model_name]
    except KeyError:
        raise ValueError(f"unknown model {spec.model_name!r}; choose one of {sorted(MODELS)}") from None
    model = builder(spec, num_classes)
    load_pretrained(model, spec.model_name, spec.weights or "none", weights_root)
    if spec.feature_extraction:
        freeze_backbone(model, spec.trainable_layers)
    return model


def load_pretrained(model: nn.Module, model_name: str, choice: str, weights_root: Path | None = None) -> None:
    """Load "imagenet", "none" or a state-dict path inside weights_root into a freshly built model
    (see the module doc)."""
    if choice == "none":
        return
    from services.trainer import weights  # torchvision's weight enums: imported when weights load

    head_prefix = head_name(model) + "."
    torchvision_classifier = weights.TORCHVISION_CLASSIFIER.get(model_name)
    ignore = (torchvision_classifier,) if torchvision_classifier else ()
    if choice == "imagenet":
        if model_name not in weights.IMAGENET_WEIGHTS:
            raise ValueError(f'{model_name} has no ImageNet weights; use weights "none" or a state dict path')
        state = weights.imagenet_state_dict(model_name)
        weights.load_weights(model, state, head_prefix, str(weights.cached_file(model_name)), ignore)
        return
    if weights_root is None:
        raise ValueError(f"weights {shown(choice)}: no weights root to look the file up in")
    path = resolve_weights_file(choice, weights_root)
    weights.load_weights(model, weights.read_state_dict(path, choice), head_prefix, shown(choice), ignore)


def head_name(model: nn.Module) -> str:
    """The attribute name of a built model's classifier head."""
    if _is_resnet(model):
        return "fc"
    if isinstance(model, PooledFeatures):
        return "head"
    if isinstance(model, nn.Sequential):  # custom_cnn
        return str(len(model) - 1)
    raise TypeError(f"{type(model).__name__} was not built by build_model")


def _is_resnet(model: nn.Module) -> bool:
    """Whether model is torchvision's ResNet; without torchvision imported, no model can be one."""
    models = sys.modules.get("torchvision.models")
    return models is not None and isinstance(model, models.ResNet)


def head_of(model: nn.Module) -> nn.Module:
    return model.get_submodule(head_name(model))


def backbone_blocks(model: nn.Module) -> list[nn.Module]:
    """The backbone's blocks, input to output: the units that trainable_layers unfreezes."""
    if _is_resnet(model):
        stem = nn.ModuleList([model.conv1, model.bn1])
        return [stem, model.layer1, model.layer2, model.layer3, model.layer4]
    if isinstance(model, PooledFeatures):
        return model.blocks()
    if isinstance(model, nn.Sequential):  # custom_cnn: its conv blocks
        return [block for block in model if isinstance(block, nn.Sequential) and block is not model[-1]]
    raise TypeError(f"{type(model).__name__} was not built by build_model")


def freeze_backbone(model: nn.Module, trainable_layers: int = 0) -> None:
    """Freeze every backbone parameter but those of the last trainable_layers blocks (all of them
    when it is at least their number); the head stays trainable."""
    blocks = backbone_blocks(model)
    model.requires_grad_(False)
    for module in [*blocks[max(len(blocks) - trainable_layers, 0) :], head_of(model)]:
        module.requires_grad_(True)


def set_train_mode(model: nn.Module) -> None:
    """model.train(), except BatchNorm layers whose parameters are all frozen stay in eval mode,
    so a frozen backbone keeps its running statistics."""
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            parameters = list(module.parameters())
            if parameters and not any(p.requires_grad for p in parameters):
                module.eval()
