"""Pretrained weights: torchvision's ImageNet files in torch's hub cache, and state-dict files.

A job's own state-dict file lives under the weights root (PADDY_WEIGHTS_ROOT) and is opened
only after shared.paths.resolve_weights_file has checked that it resolves inside it.

The ImageNet files live where torchvision keeps them, `torch.hub.get_dir()/checkpoints`
(`$TORCH_HOME/hub/checkpoints`, by default `~/.cache/torch/hub/checkpoints`), under the names
torchvision gives them: `<model>-<first hex digits of the file's sha256>.pth`. A trainer with no
network finds them there; `paddy weights download` (on a machine with internet) and
`paddy weights import FILE` put them there.

Versions: ResNet50_Weights.IMAGENET1K_V2, VGG16_Weights.IMAGENET1K_V1 (its only one) and
MobileNet_V2_Weights.IMAGENET1K_V2 — torchvision's DEFAULT for each, the most accurate on
ImageNet (80.9 %, 71.6 %, 72.2 % top-1).
"""

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import cast

import torch
import torchvision
from torch import nn
from torchvision.models import MobileNet_V2_Weights, ResNet50_Weights, VGG16_Weights
from torchvision.models._api import WeightsEnum

from shared.paths import shown

IMAGENET_WEIGHTS: dict[str, WeightsEnum] = {
    "resnet50": ResNet50_Weights.IMAGENET1K_V2,
    "vgg16": VGG16_Weights.IMAGENET1K_V1,
    "mobilenet_v2": MobileNet_V2_Weights.IMAGENET1K_V2,
}
# Keys of torchvision's own 1000-class classifier, which Paddy's head replaces.
TORCHVISION_CLASSIFIER = {"resnet50": "fc.", "vgg16": "classifier.", "mobilenet_v2": "classifier."}
PROBE_TIMEOUT_S = 10.0

StateDict = Mapping[str, torch.Tensor]


class MissingWeightsError(ValueError):
    """Pretrained weights are neither in the cache nor downloadable from here."""


def imagenet_weights(model_name: str) -> WeightsEnum:
    try:
        return IMAGENET_WEIGHTS[model_name]
    except KeyError:
        raise ValueError(f"no ImageNet weights for {model_name!r}; choose one of {sorted(IMAGENET_WEIGHTS)}") from None


def cache_dir() -> Path:
    """torchvision's download directory (follows TORCH_HOME at every call)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def file_name(model_name: str) -> str:
    return os.path.basename(urllib.parse.urlparse(imagenet_weights(model_name).url).path)


def cached_file(model_name: str) -> Path:
    """Where torchvision looks for (and downloads) the model's ImageNet weights."""
    return cache_dir() / file_name(model_name)


def hash_prefix(name: str) -> str | None:
    """The sha256 prefix torchvision writes into its file names ("resnet50-11ad3fa6.pth")."""
    match = torch.hub.HASH_REGEX.search(name)
    return match.group(1) if match else None


def imagenet_state_dict(model_name: str, progress: bool = False) -> dict[str, torch.Tensor]:
    """The model's ImageNet state dict from the cache, downloaded first when it is not there.

    Raises MissingWeightsError (not a raw URLError) when the download is impossible.
    """
    weights = imagenet_weights(model_name)
    path = cached_file(model_name)
    if not path.is_file():
        # torch's download has no timeout: a firewalled box would hang in connect() for minutes.
        probe(model_name, weights.url)
    try:
        return weights.get_state_dict(
            model_dir=str(path.parent),
            map_location="cpu",
            progress=progress,
            check_hash=True,
            weights_only=True,
        )
    except (OSError, RuntimeError) as error:
        if path.is_file():  # the download was not the problem: the cached file is
            reason = str(error).replace(str(path.parent), "<torch cache>")
            raise ValueError(
                f"the cached ImageNet file {path.name} cannot be loaded ({reason}); "
                f"replace it: `paddy weights import {path.name}`"
            ) from error
        raise missing_weights(model_name, error) from error


def download_weights(model_name: str) -> Path:
    """Put the model's ImageNet file in the cache (no-op when it is there); returns its path."""
    imagenet_state_dict(model_name, progress=True)
    return cached_file(model_name)


def probe(model_name: str, url: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Fail fast with MissingWeightsError when the weights server cannot be reached."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout_s):
            pass
    except urllib.error.HTTPError:
        pass  # the server answered; the download itself reports what is wrong
    except OSError as error:  # URLError, timeouts, refused connections
        raise missing_weights(model_name, error) from error


def missing_weights(model_name: str, error: BaseException) -> MissingWeightsError:
    """Says what to run, naming the file but not where this host keeps its cache: the message
    reaches API clients (the run's error)."""
    name = file_name(model_name)
    return MissingWeightsError(
        f"ImageNet weights for {model_name} ({name}) are not in this trainer's torch cache and "
        f"could not be downloaded ({type(error).__name__}, from {imagenet_weights(model_name).url}). "
        f"Provide them: run `paddy weights download {model_name}` on the trainer, or on a machine "
        f"with internet access, then copy {name} to the trainer and run `paddy weights import {name}` "
        "there; or set TORCH_HOME to a cache that holds it."
    )


def import_weights(source: Path, model_name: str | None = None, check_hash: bool = True) -> Path:
    """Copy a downloaded ImageNet file into the cache under torchvision's name; returns its path.

    The model is inferred from torchvision's file name when not given. The file must hold the
    torchvision model's state dict, and (unless check_hash is off) its sha256 must start with
    the prefix in torchvision's file name.
    """
    source = Path(source)
    if not source.is_file():
        raise ValueError(f"weights file {source} not found")
    if model_name is None:
        model_name = model_named_by(source.name)
    target = cached_file(model_name)
    if check_hash:
        expected, actual = hash_prefix(target.name), sha256_of(source)
        if expected and not actual.startswith(expected):
            raise ValueError(
                f"{source} is not torchvision's {target.name}: its sha256 starts with "
                f"{actual[: len(expected)]}, not {expected} (pass --no-check-hash to import it anyway)"
            )
    check_fits_torchvision(model_name, read_state_dict(source), str(source))
    if source.resolve() != target.resolve():
        target.parent.mkdir(parents=True, exist_ok=True)
        # Copied next to the target, then renamed: a trainer never sees half a file.
        with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".partial", delete=False) as partial:
            with source.open("rb") as original:
                shutil.copyfileobj(original, partial)
        os.replace(partial.name, target)
    return target


def model_named_by(name: str) -> str:
    for model_name in IMAGENET_WEIGHTS:
        if file_name(model_name) == name:
            return model_name
    expected = ", ".join(f"{file_name(m)} ({m})" for m in IMAGENET_WEIGHTS)
    raise ValueError(
        f"cannot tell which model {name} is for: torchvision names its files {expected}; name the model (--model)"
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_state_dict(path: Path, shown_as: str | None = None) -> dict[str, torch.Tensor]:
    """A state dict saved with torch.save: bare, or as the "model" of a Paddy checkpoint.

    Loaded with weights_only=True: the path comes from a job spec, so the file is not trusted
    to run code. Messages name the file as shown_as (a job's own `weights`) when given, so that
    no server path reaches a client.
    """
    path = Path(path)
    label = f"weights file {path}" if shown_as is None else f"weights {shown(shown_as)}"
    if not path.is_file():
        raise ValueError(f"{label} not found")
    try:
        # Paddy checkpoints also hold their (UTC) start time.
        with torch.serialization.safe_globals([datetime, timezone, timedelta]):
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises many types for a file that is not its own
        reason = str(error).replace(str(path), "the file")
        raise ValueError(f"{label} is not a readable state dict: {reason}") from error
    if isinstance(loaded, Mapping) and isinstance(loaded.get("model"), Mapping):
        loaded = loaded["model"]
    if not (
        isinstance(loaded, Mapping)
        and loaded
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items())
    ):
        raise ValueError(f"{label} does not hold a state dict (names → tensors)")
    return cast(dict[str, torch.Tensor], loaded)  # checked above; not copied, which would drop its _metadata


def check_fits_torchvision(model_name: str, state: StateDict, source: str) -> None:
    """Raise ValueError unless state is a full state dict of torchvision's model_name."""
    with torch.device("meta"):  # shapes only: no memory, no init
        expected = getattr(torchvision.models, model_name)(weights=None).state_dict()
    problems = key_problems(expected, state)
    if problems:
        raise ValueError(f"{source} is not a torchvision {model_name} state dict: {problems}")


def load_weights(
    model: nn.Module, state: StateDict, head_prefix: str, source: str, ignore_prefixes: tuple[str, ...] = ()
) -> str:
    """Load state into model: whole (a Paddy model's own state dict), or as its backbone.

    Returns "full" or "backbone". A backbone load needs every backbone key with its shape; keys
    of the head (head_prefix) and of ignore_prefixes (torchvision's classifier) are skipped and
    the head keeps its fresh initialization. Raises ValueError naming what does not fit.
    """
    own = model.state_dict()
    if not key_problems(own, state):
        model.load_state_dict(state)
        return "full"
    skip = (head_prefix, *ignore_prefixes)
    backbone = OrderedDict((k, v) for k, v in state.items() if not k.startswith(skip))
    if hasattr(state, "_metadata"):  # module versions: lets old BatchNorm files load
        backbone._metadata = state._metadata  # type: ignore[attr-defined]
    own_backbone = {k: v for k, v in own.items() if not k.startswith(head_prefix)}
    problems = key_problems(own_backbone, backbone, optional=("num_batches_tracked",))
    if problems:
        raise ValueError(f"{source} does not fit {type(model).__name__}'s backbone: {problems}")
    model.load_state_dict(backbone, strict=False)
    return "backbone"


def key_problems(expected: StateDict, given: StateDict, optional: tuple[str, ...] = ()) -> str:
    """What keeps `given` from loading as `expected` ("" when nothing does)."""
    missing = [k for k in expected if k not in given and not k.endswith(optional)]
    unexpected = [k for k in given if k not in expected]
    wrong = [
        f"{k} {tuple(given[k].shape)} ≠ {tuple(v.shape)}"
        for k, v in expected.items()
        if k in given and given[k].shape != v.shape
    ]
    problems = [
        f"{len(keys)} {what} ({', '.join(keys[:3])}{', …' if len(keys) > 3 else ''})"
        for what, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong))
        if keys
    ]
    return "; ".join(problems)
