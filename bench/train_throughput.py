"""Training throughput: Paddy's loop against the original notebook's, same model, data and batch.

    python -m bench.train_throughput                      # custom_cnn and mobilenet_v2, 224 px
    python -m bench.train_throughput --models custom_cnn --images 50 --epochs 3 --threads 2

The reference loop is written the way the original notebook trained: torchvision ImageFolder with
per-image PIL transforms (decoded and augmented again every epoch) in a DataLoader, plain fp32
model.train() with Adam and cross-entropy, loss.item() per batch. Paddy's loop is Paddy's own code:
images decoded once into uint8 tensors (services/trainer/data.py), then
services.trainer.engine.train_one_epoch with make_setup (batched per-image augmentation on the
device, channels_last, bf16 autocast where the device has bf16).

Both train on the same images: the training split that stratified_split gives the data set.
Every loop runs in a fresh child process, one after the other, so peak memory
(ru_maxrss, and torch.cuda.max_memory_allocated on CUDA) belongs to that loop alone.
Weights are always "none" (nothing is downloaded); a model whose default is a frozen backbone
(mobilenet_v2, resnet50, vgg16) keeps it frozen in both loops.

Reported per loop: the first epoch's time; steady-state images/s over epochs 2..N; CPU time per
image over those epochs (all threads plus DataLoader workers: steadier than wall time when other
processes share the CPUs); for Paddy the one-off decode. "1-epoch job" is the train images over
(their decode + the first epoch), the decode share being the measured decode rate times the
train images.

--tune-malloc paddy|both runs the loop(s) with glibc's malloc told to keep freed memory
(services/trainer/memory.py, on by default in Paddy's trainers): on a CPU this removes most of the page faults of each step.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "datasets" / "rice-leaf-real"
RESULT_PREFIX = "RESULT "
SEED = 0
# The original ran on Colab, whose runtimes have 2 vCPUs; DataLoader workers to match.
REFERENCE_WORKERS = 2
MAX_IMAGE_PIXELS = 50_000_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=["custom_cnn", "mobilenet_v2"],
        choices=["custom_cnn", "mobilenet_v2", "resnet50", "vgg16"],
    )
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--images", type=int, default=70, help="images per class (the first N, sorted)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="ImageFolder directory")
    parser.add_argument("--epochs", type=int, default=2, help="epoch 1 warms up; 2..N are steady state")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument(
        "--reference-workers", type=int, default=REFERENCE_WORKERS, help="DataLoader num_workers of the reference loop"
    )
    parser.add_argument("--no-channels-last", action="store_true", help="Paddy: channels_last off")
    parser.add_argument("--no-amp", action="store_true", help="Paddy: bf16 autocast off")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument(
        "--tune-malloc",
        choices=["off", "paddy", "both"],
        default="paddy",
        help="glibc malloc kept from returning big blocks to the OS "
        "(services/trainer/memory.py, what Paddy's trainers do): in Paddy's loop "
        "(default), in both loops, or off",
    )
    # Internal: run one loop in this process and print its result as JSON.
    parser.add_argument("--loop", choices=["reference", "paddy"], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------- child: one loop


def _device(setting: str):
    import torch

    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


def _spec(args: argparse.Namespace):
    from shared.schemas.jobs import JobSpec

    return JobSpec(
        model_name=args.model,
        dataset=str(args.data),
        image_size=args.image_size,
        batch_size=args.batch_size,
        epochs=args.epochs,
        weights="none",
        seed=SEED,
        augment="original",
        channels_last=not args.no_channels_last,
        mixed_precision=not args.no_amp,
    )


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its reaped children (DataLoader workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _train_split(data_dir: Path):
    from shared.datasets.imagefolder import scan_image_folder
    from shared.datasets.splits import stratified_split

    index = scan_image_folder(data_dir)
    return index, stratified_split(index.labels, SEED)


def run_paddy(args: argparse.Namespace, device) -> dict:
    """Paddy's path, as services/trainer/training.py sets it up (minus events and checkpoints)."""
    import torch

    from services.trainer.data import load_split_data, place
    from services.trainer.engine import RandomStreams, make_optimizer, make_setup, train_one_epoch
    from services.trainer.models import build_model

    spec = _spec(args)
    index, split = _train_split(args.data)
    started = time.perf_counter()
    data = load_split_data(index, split, spec.image_size, MAX_IMAGE_PIXELS)
    decode_s = time.perf_counter() - started
    decoded = sum(data.sizes().values())
    train = place(data.train, device)

    torch.manual_seed(spec.seed)
    model = build_model(spec, len(index.class_names)).to(device)
    if spec.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(spec, model)
    setup = make_setup(spec, device)
    random = RandomStreams.seeded(spec.seed, device)
    epoch_s, epoch_cpu_s = [], []
    for _epoch in range(spec.epochs):
        _synchronize(device)
        started, cpu_started = time.perf_counter(), _cpu_seconds()
        train_one_epoch(model, train, optimizer, setup, spec.batch_size, random)  # .item() syncs
        epoch_s.append(time.perf_counter() - started)
        epoch_cpu_s.append(_cpu_seconds() - cpu_started)
    return {
        "train_images": len(train),
        "epoch_s": epoch_s,
        "epoch_cpu_s": epoch_cpu_s,
        "decode_s": decode_s,
        "decoded_images": decoded,
        "channels_last": setup.channels_last,
        "autocast": str(setup.autocast_dtype).removeprefix("torch.") if setup.autocast_dtype else "off",
    }


def run_reference(args: argparse.Namespace, device) -> dict:
    """The original notebook's loop: ImageFolder + PIL transforms + DataLoader, fp32, Adam."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    from services.trainer.models import build_model

    spec = _spec(args)
    index, split = _train_split(args.data)
    size = spec.image_size
    train_transforms = transforms.Compose(
        [
            transforms.Resize((size, size)),
            transforms.RandomHorizontalFlip(),
            transforms.RandomVerticalFlip(),
            transforms.RandomRotation(20),
            transforms.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.1),
            transforms.RandomAffine(degrees=30, translate=(0.1, 0.1)),
            transforms.ToTensor(),
            transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        ]
    )
    dataset = datasets.ImageFolder(str(index.root), transform=train_transforms)
    if dataset.classes != index.class_names:
        raise RuntimeError(f"ImageFolder classes {dataset.classes} differ from Paddy's {index.class_names}")
    train_paths = {index.paths[position] for position in split["train"]}
    positions = [i for i, (path, _label) in enumerate(dataset.samples) if Path(path) in train_paths]
    if len(positions) != len(train_paths):
        raise RuntimeError(f"ImageFolder found {len(positions)} of the {len(train_paths)} train images")
    loader = DataLoader(
        Subset(dataset, positions), batch_size=spec.batch_size, shuffle=True, num_workers=args.reference_workers
    )

    torch.manual_seed(spec.seed)
    model = build_model(spec, len(index.class_names)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.learning_rate)
    criterion = nn.CrossEntropyLoss()
    epoch_s, epoch_cpu_s = [], []
    for _epoch in range(spec.epochs):
        _synchronize(device)
        started, cpu_started = time.perf_counter(), _cpu_seconds()
        model.train()
        running_loss, correct = 0.0, 0
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            outputs = model(images)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item() * images.size(0)
            correct += (outputs.argmax(1) == labels).sum().item()
        epoch_s.append(time.perf_counter() - started)
        epoch_cpu_s.append(_cpu_seconds() - cpu_started)  # the epoch's workers have exited: counted
    return {
        "train_images": len(positions),
        "epoch_s": epoch_s,
        "epoch_cpu_s": epoch_cpu_s,
        "decode_s": None,
        "decoded_images": None,
        "channels_last": False,
        "autocast": "off",
        "workers": args.reference_workers,
        # Workers exit after every epoch (persistent_workers=False): the largest one's peak.
        "worker_peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def run_child(args: argparse.Namespace) -> None:
    tuned = args.tune_malloc == "both" or (args.tune_malloc == "paddy" and args.loop == "paddy")
    if tuned:
        from services.trainer.memory import keep_freed_memory

        keep_freed_memory()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = _device(args.device)
    result = run_paddy(args, device) if args.loop == "paddy" else run_reference(args, device)
    result.update(
        malloc_tuned=tuned,
        loop=args.loop,
        model=args.model,
        device=str(device),
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
        cuda_peak_mib=torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
    )
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# ---------------------------------------------------------------------------- parent: the table


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def subset_dir(data: Path, per_class: int, workdir: Path) -> Path:
    """data itself when it has at most per_class images per class, else a folder of symlinks to the
    first per_class images (sorted) of each class."""
    from shared.datasets.imagefolder import scan_image_folder

    index = scan_image_folder(data)
    counts = {name: index.labels.count(label) for label, name in enumerate(index.class_names)}
    if max(counts.values()) <= per_class:
        return index.root
    for label, name in enumerate(index.class_names):
        chosen = [path for path, lab in zip(index.paths, index.labels) if lab == label][:per_class]
        (workdir / name).mkdir()
        for path in chosen:
            (workdir / name / path.name).symlink_to(path.resolve())
    return workdir


def run_loop(loop: str, model: str, data: Path, args: argparse.Namespace) -> dict:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--loop",
        loop,
        "--model",
        model,
        "--data",
        str(data),
        "--image-size",
        str(args.image_size),
        "--batch-size",
        str(args.batch_size),
        "--epochs",
        str(args.epochs),
        "--device",
        args.device,
        "--reference-workers",
        str(args.reference_workers),
        "--tune-malloc",
        args.tune_malloc,
    ]
    if args.threads:
        command += ["--threads", str(args.threads)]
    if args.no_channels_last:
        command.append("--no-channels-last")
    if args.no_amp:
        command.append("--no-amp")
    print(f"  {model:13} {loop:9} …", end="", flush=True)
    started = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)
    lines = [line for line in finished.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if finished.returncode != 0 or not lines:
        print(" failed")
        sys.stderr.write(finished.stdout + finished.stderr)
        raise SystemExit(f"{loop} loop for {model} failed (exit status {finished.returncode})")
    print(f" {time.perf_counter() - started:.0f} s")
    return json.loads(lines[-1].removeprefix(RESULT_PREFIX))


def steady_rate(result: dict) -> float:
    steady = result["epoch_s"][1:] or result["epoch_s"]
    return result["train_images"] * len(steady) / sum(steady)


def steady_cpu_ms(result: dict) -> float:
    """CPU time (all threads and DataLoader workers) per image over the steady epochs."""
    steady = result["epoch_cpu_s"][1:] or result["epoch_cpu_s"]
    return 1000 * sum(steady) / (result["train_images"] * len(steady))


def one_epoch_job_rate(result: dict) -> float:
    """Train images over (their one-off decode + the first, cold epoch)."""
    decode = 0.0
    if result["decode_s"] is not None:
        decode = result["decode_s"] * result["train_images"] / result["decoded_images"]
    return result["train_images"] / (decode + result["epoch_s"][0])


def _mib(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def print_table(results: list[tuple[dict, dict]]) -> None:
    header = (
        "model",
        "loop",
        "train imgs",
        "epoch 1 s",
        "steady img/s",
        "steady CPU ms/img",
        "1-epoch job img/s",
        "decode s (all splits)",
        "peak RSS MiB",
        "worker peak RSS MiB",
        "CUDA peak MiB",
    )
    rows = []
    for reference, paddy in results:
        for result in (reference, paddy):
            rows.append(
                (
                    result["model"],
                    result["loop"] + (" (malloc tuned)" if result["malloc_tuned"] else ""),
                    str(result["train_images"]),
                    f"{result['epoch_s'][0]:.1f}",
                    f"{steady_rate(result):.1f}",
                    f"{steady_cpu_ms(result):.0f}",
                    f"{one_epoch_job_rate(result):.1f}",
                    "–"
                    if result["decode_s"] is None
                    else f"{result['decode_s']:.2f} ({result['decoded_images']} imgs)",
                    _mib(result["peak_rss_mib"]),
                    _mib(result.get("worker_peak_rss_mib")),
                    _mib(result["cuda_peak_mib"]),
                )
            )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    print(
        "| model | steady-state ratio (Paddy / reference) | 1-epoch job ratio (decode included) "
        "| CPU time per image, reference / Paddy |"
    )
    print("|---|---|---|---|")
    for reference, paddy in results:
        print(
            f"| {reference['model']} | {steady_rate(paddy) / steady_rate(reference):.2f}× "
            f"| {one_epoch_job_rate(paddy) / one_epoch_job_rate(reference):.2f}× "
            f"| {steady_cpu_ms(reference) / steady_cpu_ms(paddy):.2f}× |"
        )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.loop:
        run_child(args)
        return
    with tempfile.TemporaryDirectory(prefix="paddy-bench-") as workdir:
        data = subset_dir(args.data, args.images, Path(workdir))
        print(f"command: python -m bench.train_throughput {' '.join(sys.argv[1:] if argv is None else argv)}")
        print(
            f"data: {args.data} ({args.images} images per class at most), {args.image_size} px, "
            f"batch {args.batch_size}, {args.epochs} epochs, reference DataLoader num_workers="
            f"{args.reference_workers}, malloc tuning: {args.tune_malloc}"
        )
        print(
            f"machine: {cpu_model()}, {os.cpu_count()} CPUs, load average "
            f"{' '.join(f'{load:.2f}' for load in os.getloadavg())}"
        )
        results = []
        for model in args.models:
            results.append((run_loop("reference", model, data, args), run_loop("paddy", model, data, args)))
    first = results[0][1]
    print(
        f"torch {first['torch']}, device {first['device']}, {first['threads']} threads; Paddy: "
        f"channels_last {first['channels_last']}, autocast {first['autocast']}; "
        f"load average after {' '.join(f'{load:.2f}' for load in os.getloadavg())}"
    )
    print()
    print_table(results)


if __name__ == "__main__":
    main()
