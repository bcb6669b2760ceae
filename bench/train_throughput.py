"""Training throughput: Paddy's loop against the original notebook's, same model, data and batch.

    python -m bench.train_throughput                      # custom_cnn and mobilenet_v2, 224 px
    python -m bench.train_throughput --models custom_cnn --images 50 --epochs 3 --threads 2
    python -m bench.train_throughput --models custom_cnn mobilenet_v2 resnet50 vgg16 \
        --images 18 --epochs 7 --threads 2 --no-reference   # pipeline efficiency only, all four

The reference loop is written the way the original notebook trained: torchvision ImageFolder with
per-image PIL transforms (decoded and augmented again every epoch) in a DataLoader, plain fp32
model.train() with Adam and cross-entropy, loss.item() per batch. Paddy's loop is Paddy's own code:
images decoded once into uint8 tensors (services/trainer/data.py), then
services.trainer.engine.train_one_epoch with make_setup (batched per-image augmentation on the
device, channels_last, bf16 autocast where the device has bf16).

The bound: a bare training step, timed in Paddy's child process on the same model and optimizer
(so the same frozen parts, memory layout and autocast as make_setup decides), over fixed batches
made once before training: the same batch sizes as Paddy's epoch, already normalised float
tensors on the device (no indexing, no augmentation, no uint8 → float). Epochs of the two
alternate (Paddy then bare, then bare then Paddy, …) so both share whatever else runs on the
machine. Pipeline efficiency = Paddy's steady images/s ÷ the bare step's (goal ≥ 0.9), also
printed by CPU time and as the median of the per-epoch-pair ratios, steadier under load.
--no-bare leaves the bare step out; --compile-model and --compile-augment are experiments
(torch.compile of the model, or of the colour jitter), not Paddy's defaults.

All loops train on the same images: the training split that stratified_split gives the data set.
The reference and Paddy's loop run in fresh child processes, one after the other, so peak memory
(ru_maxrss, and torch.cuda.max_memory_allocated on CUDA) belongs to that loop alone; Paddy's is
read before the first bare epoch.
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
import shutil
import statistics
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
# Paddy's steady images/s over the bare step's (issue 18).
EFFICIENCY_GOAL = 0.9


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
    parser.add_argument(
        "--no-reference",
        action="store_true",
        help="skip the original notebook's loop (Paddy's loop and the bare step only: the efficiency)",
    )
    parser.add_argument(
        "--no-bare",
        action="store_true",
        help="skip the bare training step (the bound that the pipeline efficiency divides by)",
    )
    parser.add_argument(
        "--compile-model",
        action="store_true",
        help="experiment: torch.compile the model (Paddy's loop and the bare step; compile time in epoch 1)",
    )
    parser.add_argument(
        "--compile-augment",
        action="store_true",
        help="experiment: torch.compile the colour jitter of Paddy's augmentation (compile time in epoch 1)",
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


def bare_batches(data, setup, batch_size: int) -> list:
    """Paddy's epoch as ready inputs: the same batch sizes, already normalised float tensors on the
    device in the setup's memory layout, labels there too."""
    from services.trainer.data import iterate_batches
    from services.trainer.engine import prepare_inputs

    return [
        (prepare_inputs(images, setup), labels.to(setup.device)) for images, labels in iterate_batches(data, batch_size)
    ]


def bare_epoch(model, batches: list, optimizer, setup) -> float:
    """The bound: Paddy's training step alone (same model, optimizer, autocast) over ready batches."""
    import torch
    from torch import nn

    from services.trainer.models import set_train_mode

    set_train_mode(model)
    loss_sum = torch.zeros((), device=setup.device)
    for inputs, labels in batches:
        optimizer.zero_grad(set_to_none=True)
        with setup.autocast():
            loss = nn.functional.cross_entropy(model(inputs), labels)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach()
    return loss_sum.item()  # waits for the device


def run_paddy(args: argparse.Namespace, device) -> dict:
    """Paddy's path, as services/trainer/training.py sets it up (minus events and checkpoints),
    alternating epoch by epoch with the bare step (unless --no-bare) on the same model."""
    import torch

    from services.trainer.data import load_split_data, place
    from services.trainer.engine import RandomStreams, make_optimizer, make_setup, train_one_epoch
    from services.trainer.models import build_model

    spec = _spec(args)
    index, split = _train_split(args.data)
    started = time.perf_counter()
    data = load_split_data(index, split, spec.geometry, MAX_IMAGE_PIXELS)
    decode_s = time.perf_counter() - started
    decoded = sum(data.sizes().values())
    train = place(data.train, device)

    torch.manual_seed(spec.seed)
    model = build_model(spec, len(index.class_names)).to(device)
    if spec.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(spec, model)
    if args.compile_model:  # compiled in the first epoch, which its time includes
        model = torch.compile(model)
    setup = make_setup(spec, device)
    random = RandomStreams.seeded(spec.seed, device)
    batches = [] if args.no_bare else bare_batches(train, setup, spec.batch_size)
    epochs = {"paddy": ([], []), "bare": ([], [])}  # wall s, CPU s per epoch
    paddy_peak_rss_mib = None

    def timed(loop: str) -> None:
        _synchronize(device)
        started, cpu_started = time.perf_counter(), _cpu_seconds()
        if loop == "paddy":
            train_one_epoch(model, train, optimizer, setup, spec.batch_size, random)  # .item() syncs
        else:
            bare_epoch(model, batches, optimizer, setup)
        epochs[loop][0].append(time.perf_counter() - started)
        epochs[loop][1].append(_cpu_seconds() - cpu_started)

    for epoch in range(spec.epochs):
        # Both loops share whatever else runs on the machine: alternated, first one, then the other.
        order = ("paddy", "bare") if epoch % 2 == 0 else ("bare", "paddy")
        for loop in order:
            if loop == "bare" and args.no_bare:
                continue
            timed(loop)
            if paddy_peak_rss_mib is None:  # before any bare epoch: Paddy's own peak
                paddy_peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "train_images": len(train),
        "epoch_s": epochs["paddy"][0],
        "epoch_cpu_s": epochs["paddy"][1],
        "bare_epoch_s": epochs["bare"][0],
        "bare_epoch_cpu_s": epochs["bare"][1],
        "paddy_peak_rss_mib": paddy_peak_rss_mib,
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
    if args.compile_augment and args.loop == "paddy":
        from services.trainer import augment

        # An experiment, not Paddy's default: original_augment looks color_jitter up at each call.
        augment.color_jitter = torch.compile(augment.color_jitter, dynamic=True)
    result = run_paddy(args, device) if args.loop == "paddy" else run_reference(args, device)
    result.update(
        malloc_tuned=tuned,
        loop=args.loop,
        model=args.model,
        device=str(device),
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        # KiB on Linux; Paddy's loop: its peak before the first bare epoch ran in the same process.
        peak_rss_mib=result.pop("paddy_peak_rss_mib", None)
        or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
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
    """data itself when it has at most per_class images per class, else a folder with copies of the
    first per_class images (sorted) of each class (copies: scan_image_folder refuses links that lead
    outside the data set)."""
    from shared.datasets.imagefolder import scan_image_folder

    index = scan_image_folder(data)
    counts = {name: index.labels.count(label) for label, name in enumerate(index.class_names)}
    if max(counts.values()) <= per_class:
        return index.root
    for label, name in enumerate(index.class_names):
        chosen = [path for path, lab in zip(index.paths, index.labels) if lab == label][:per_class]
        (workdir / name).mkdir()
        for path in chosen:
            shutil.copyfile(path, workdir / name / path.name)
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
    for flag in ("no_bare", "compile_model", "compile_augment"):
        if getattr(args, flag):
            command.append("--" + flag.replace("_", "-"))
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


def bare_result(paddy: dict) -> dict | None:
    """The bare step's epochs (timed in Paddy's process) as a result of their own; None without."""
    if not paddy.get("bare_epoch_s"):
        return None
    return {
        **paddy,
        "loop": "bare",
        "epoch_s": paddy["bare_epoch_s"],
        "epoch_cpu_s": paddy["bare_epoch_cpu_s"],
        "decode_s": None,
        "decoded_images": None,
        "peak_rss_mib": None,  # shares Paddy's process
        "cuda_peak_mib": None,
    }


def efficiency(paddy: dict, bare: dict) -> tuple[float, float, list[float]]:
    """Pipeline efficiency: Paddy's steady img/s over the bare step's, by wall time and by CPU
    time, and the wall ratio of each steady (Paddy, bare) epoch pair."""
    pairs = list(zip(paddy["epoch_s"], bare["epoch_s"]))
    steady_pairs = pairs[1:] or pairs
    return (
        steady_rate(paddy) / steady_rate(bare),
        steady_cpu_ms(bare) / steady_cpu_ms(paddy),
        [bare_s / paddy_s for paddy_s, bare_s in steady_pairs],
    )


def _mib(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def print_table(results: list[tuple[dict | None, dict]]) -> None:
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
        for result in [loop for loop in (reference, paddy, bare_result(paddy)) if loop is not None]:
            rows.append(
                (
                    result["model"],
                    result["loop"]
                    + (" (malloc tuned)" if result["malloc_tuned"] else "")
                    + (" (in Paddy's process)" if result["loop"] == "bare" else ""),
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
    compared = [(reference, paddy) for reference, paddy in results if reference is not None]
    if compared:
        print()
        print(
            "| model | steady-state ratio (Paddy / reference) | 1-epoch job ratio (decode included) "
            "| CPU time per image, reference / Paddy |"
        )
        print("|---|---|---|---|")
    for reference, paddy in compared:
        print(
            f"| {reference['model']} | {steady_rate(paddy) / steady_rate(reference):.2f}× "
            f"| {one_epoch_job_rate(paddy) / one_epoch_job_rate(reference):.2f}× "
            f"| {steady_cpu_ms(reference) / steady_cpu_ms(paddy):.2f}× |"
        )
    measured = [(paddy, bare) for _reference, paddy in results if (bare := bare_result(paddy)) is not None]
    if not measured:
        return
    print()
    print(
        "| model | Paddy steady img/s | bare steady img/s | pipeline efficiency | Paddy CPU ms/img "
        "| bare CPU ms/img | efficiency by CPU time | wall ratio per epoch pair |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for paddy, bare in measured:
        by_wall, by_cpu, per_pair = efficiency(paddy, bare)
        print(
            f"| {paddy['model']} | {steady_rate(paddy):.1f} | {steady_rate(bare):.1f} | {by_wall:.2f} "
            f"| {steady_cpu_ms(paddy):.0f} | {steady_cpu_ms(bare):.0f} | {by_cpu:.2f} "
            f"| {' '.join(f'{ratio:.2f}' for ratio in per_pair)} |"
        )
    print()
    for paddy, bare in measured:
        by_wall, by_cpu, per_pair = efficiency(paddy, bare)
        verdict = "met" if by_wall >= EFFICIENCY_GOAL else "not met"
        print(
            f"pipeline efficiency {paddy['model']}: {by_wall:.2f} (median epoch pair "
            f"{statistics.median(per_pair):.2f}, CPU time {by_cpu:.2f}); goal ≥ {EFFICIENCY_GOAL}: {verdict}"
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
            reference = None if args.no_reference else run_loop("reference", model, data, args)
            results.append((reference, run_loop("paddy", model, data, args)))
    first = results[0][1]
    print(
        f"torch {first['torch']}, device {first['device']}, {first['threads']} threads; Paddy: "
        f"channels_last {first['channels_last']}, autocast {first['autocast']}, torch.compile: "
        f"{', '.join(name for name in ('model', 'augment') if getattr(args, 'compile_' + name)) or 'off'}; "
        f"load average after {' '.join(f'{load:.2f}' for load in os.getloadavg())}"
    )
    print()
    print_table(results)


if __name__ == "__main__":
    main()
