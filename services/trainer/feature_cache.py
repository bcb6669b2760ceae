"""A frozen backbone's features, computed once and reused (JobSpec.feature_views).

With a frozen backbone the head is all that trains, and the backbone's forward pass is nearly
all of an epoch's work. So a job with feature_views > 0 passes each training image through the
backbone that many times, each time augmented, and each validation and test image once,
unaugmented; every epoch then trains the head on one of each image's views (engine.batch_inputs),
and the test evaluation runs the head on the test images' features.

The features are reused by every run with the same key (feature_key): a sha256 over everything
they depend on — the decoded images themselves, so the dataset, its split and the image size —
and nothing a head sweep varies (learning rate, dropout, batch size, epochs; the training seed
only where it seeds the backbone's weights). They live in <artifacts>/feature_cache/<key>.pt,
and the last few in this process's memory (on the GPU when they fit). A file that cannot be
read or does not hold what its key promises is computed again, never trusted.
"""

import hashlib
import json
import logging
import os
import pickle
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from services.trainer.data import ImageTensors, SplitData, iterate_batches
from services.trainer.engine import TrainSetup, prepare_inputs
from services.trainer.models import head_name
from shared.paths import resolve_weights_file
from shared.schemas.jobs import JobSpec

log = logging.getLogger(__name__)

# Changes whenever what a file holds, or how its features are computed, changes.
FORMAT = 2
CACHE_DIR = "feature_cache"
# Images per backbone pass. Fixed rather than the job's batch size, which the key leaves out:
# the augmentation draws its random numbers batch by batch.
EXTRACTION_BATCH = 64
# Feature sets kept in memory: a worker runs a sweep's runs one after another.
MEMORY_ENTRIES = 2

# What a file holds beside its format and key; Features' tensors of the same names.
PARTS = ("train", "val", "test")

_recent: OrderedDict[str, "Features"] = OrderedDict()


@dataclass(frozen=True)
class Features:
    key: str
    train: torch.Tensor  # N×V×D float32: V augmented views of each training image
    val: torch.Tensor  # N×D float32: each validation image as it is
    test: torch.Tensor  # N×D float32: each test image as it is

    def nbytes(self) -> int:
        return sum(part.numel() * part.element_size() for part in (self.train, self.val, self.test))

    def to(self, device: torch.device) -> "Features":
        return Features(self.key, *(getattr(self, name).to(device) for name in PARTS))


def cache_path(artifacts_root: Path, key: str) -> Path:
    return Path(artifacts_root) / CACHE_DIR / f"{key}.pt"


def weights_identity(spec: JobSpec, weights_root: Path | None) -> dict[str, object]:
    """What the backbone's weights are, for the key."""
    choice = spec.weights or "none"
    if choice == "none":  # torchvision's random initialisation, drawn from the run's seed
        return {"weights": "none", "seed": spec.seed}
    if choice == "imagenet":
        from services.trainer import weights

        return {"weights": "imagenet", "file": weights.file_name(spec.model_name)}
    if weights_root is None:
        raise ValueError("a weights file needs a weights root")
    path = resolve_weights_file(choice, weights_root)
    stat = path.stat()
    return {"weights": str(path), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _digest(images: torch.Tensor) -> str:
    return hashlib.sha256(memoryview(images.contiguous().numpy()).cast("B")).hexdigest()


def feature_key(
    spec: JobSpec, split_hash: str, data: SplitData, setup: TrainSetup, weights_root: Path | None = None
) -> str:
    """The hash of everything the features depend on; data: the decoded images, on the CPU."""
    facts = {
        "format": FORMAT,
        "model_name": spec.model_name,
        **weights_identity(spec, weights_root),
        "image_size": spec.image_size,
        "resize": spec.resize,
        "split_hash": split_hash,
        # The very pixels: the same split of a changed (or another) dataset is other data.
        "train_images": _digest(data.train.images),
        "val_images": _digest(data.val.images),
        "test_images": _digest(data.test.images),
        "feature_views": spec.cached_views,
        "augment": spec.augment,
        # Numerics and random draws differ between devices, precisions, memory formats and torch releases.
        "torch": torch.__version__,
        "device": setup.device.type,
        "autocast": str(setup.autocast_dtype),
        "channels_last": setup.channels_last,
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


@contextmanager
def backbone_of(model: nn.Module) -> Iterator[nn.Module]:
    """model with its head swapped for nn.Identity (its own pooling stays), in eval mode; the
    head is back when the block ends."""
    name, was_training = head_name(model), model.training
    head = model.get_submodule(name)
    setattr(model, name, nn.Identity())
    model.eval()
    try:
        yield model
    finally:
        setattr(model, name, head)
        model.train(was_training)


def _features(
    backbone: nn.Module,
    images: ImageTensors,
    setup: TrainSetup,
    generator: torch.Generator | None,
    should_stop: Callable[[], bool],
) -> torch.Tensor | None:
    """float32 features of every image, in order (augmented when a generator is given); None
    when should_stop said so between batches."""
    outputs = []
    for batch, _labels in iterate_batches(images, EXTRACTION_BATCH):
        with setup.autocast():
            outputs.append(backbone(prepare_inputs(batch, setup, generator)).float())
        if should_stop():
            return None
    return torch.cat(outputs)


def compute_features(
    model: nn.Module,
    data: SplitData,
    setup: TrainSetup,
    views: int,
    key: str,
    should_stop: Callable[[], bool] = lambda: False,
) -> Features | None:
    """views augmented views of data's training images, and its validation and test images as
    they are, through the model's backbone; the views are drawn from a generator seeded by key,
    so every run with the key gets the same. None when should_stop said so."""
    generator = torch.Generator(device=setup.device).manual_seed(int(key[:15], 16))
    computed = []
    with backbone_of(model) as backbone, torch.inference_mode():
        for images, augmented in [(data.train, True)] * views + [(data.val, False), (data.test, False)]:
            part = _features(backbone, images, setup, generator if augmented else None, should_stop)
            if part is None:
                return None
            computed.append(part)
    *train, val, test = computed
    return Features(key, torch.stack(train, dim=1), val, test)


def _valid(loaded: object, key: str, counts: dict[str, int], views: int) -> bool:
    if not isinstance(loaded, dict) or loaded.get("format") != FORMAT or loaded.get("key") != key:
        return False
    parts = [loaded.get(name) for name in PARTS]
    tensors = [part for part in parts if isinstance(part, torch.Tensor) and part.dtype == torch.float32]
    if len(tensors) != len(PARTS):
        return False
    train, val, test = tensors
    return (
        train.ndim == 3
        and train.shape[:2] == (counts["train"], views)
        and val.shape == (counts["val"], train.shape[2])
        and test.shape == (counts["test"], train.shape[2])
        and all(bool(part.isfinite().all()) for part in tensors)
    )


def read_features(path: Path, key: str, counts: dict[str, int], views: int) -> Features | None:
    """The features in path when it holds exactly what key promises, else None (logged)."""
    if not path.is_file():
        return None
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, EOFError, RuntimeError, ValueError, pickle.UnpicklingError) as error:
        log.warning("feature cache %s unreadable (%s): computing it again", path, error)
        return None
    if not _valid(loaded, key, counts, views):
        log.warning("feature cache %s does not hold the features of its key: computing it again", path)
        return None
    return Features(key, loaded["train"], loaded["val"], loaded["test"])


def write_features(path: Path, features: Features) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # One temporary file per process: two trainers computing the same key never share one.
    partial = path.with_suffix(f".{os.getpid()}.partial")
    torch.save({"format": FORMAT, "key": features.key, **{name: getattr(features, name) for name in PARTS}}, partial)
    os.replace(partial, path)


def placed(features: Features, device: torch.device, free_fraction: float) -> Features:
    """On a CUDA device when they take less than free_fraction of its free memory, else on the CPU."""
    if device.type == "cuda" and features.nbytes() < free_fraction * torch.cuda.mem_get_info(device)[0]:
        target = device
    else:
        target = torch.device("cpu")
    return features.to(target)


def remember(features: Features) -> None:
    _recent[features.key] = features
    _recent.move_to_end(features.key)
    while len(_recent) > MEMORY_ENTRIES:
        _recent.popitem(last=False)


def forget_all() -> None:
    """Empty this process's memory of features (the files stay)."""
    _recent.clear()


def frozen_features(
    model: nn.Module,
    spec: JobSpec,
    data: SplitData,
    setup: TrainSetup,
    key: str,
    artifacts_root: Path,
    free_fraction: float = 0.5,
    should_stop: Callable[[], bool] = lambda: False,
) -> Features | None:
    """The features of key: from memory, from its file, or computed (and then written). None
    when should_stop said so while they were being computed."""
    if (known := _recent.get(key)) is not None:
        _recent.move_to_end(key)
        log.info("features %s: from memory", key[:12])
        return known
    path = cache_path(artifacts_root, key)
    started = time.perf_counter()
    features = read_features(path, key, data.sizes(), spec.cached_views)
    if features is not None:
        log.info("features %s: read from %s in %.1f s", key[:12], path, time.perf_counter() - started)
    else:
        features = compute_features(model, data, setup, spec.cached_views, key, should_stop)
        if features is None:
            return None
        write_features(path, features.to(torch.device("cpu")))
        log.info(
            "features %s: %d views of %d images, %d validation and %d test images computed in %.1f s",
            key[:12],
            spec.cached_views,
            len(data.train),
            len(data.val),
            len(data.test),
            time.perf_counter() - started,
        )
    features = placed(features, setup.device, free_fraction)
    remember(features)
    return features
