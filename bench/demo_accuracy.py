"""The demo's first look: do the jobs `make demo` queues reach 0.9 test accuracy within 2 minutes
each on this CPU?

    python -m bench.demo_accuracy                    # the demo's own data and jobs (infra/demo.py)
    python -m bench.demo_accuracy --data-seed 1      # the same jobs on other images
    python -m bench.demo_accuracy --seed-offset 10   # other training seeds (seed + 10)

Draws the demo dataset as `make demo` does (infra.demo.synthesize_demo_data) and trains the
three demo specs (infra.demo.demo_specs) one after the other on the CPU with train_locally, as
one trainer runs the queued jobs: they share an artifacts root, so the first job audits the
dataset before it splits it (the audit is cached for the others) and its wall time includes
that audit, as a queued job's does.

Printed per job: the test accuracy with its Wilson 95 % interval, wall and CPU seconds (the CPU
seconds of this process change little when other work shares the machine), epochs run and the
best one, the load average before and after; then whether every job met the goal.
"""

import argparse
import dataclasses
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

import torch

from infra.demo import DEMO_DATA, DEMO_EPOCHS, demo_specs, synthesize_demo_data
from services.trainer.local_run import train_locally
from services.trainer.settings import TrainerSettings
from shared.schemas.events import TrainingSummary
from shared.schemas.jobs import JobSpec
from shared.stats import wilson_interval

GOAL_ACCURACY = 0.9
GOAL_SECONDS = 120.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-seed", type=int, default=DEMO_DATA.seed, help="draws the images (the demo's: 0)")
    parser.add_argument("--seed-offset", type=int, default=0, help="added to each demo job's training seed")
    parser.add_argument("--epochs", type=int, default=DEMO_EPOCHS)
    parser.add_argument("--verbose", action="store_true", help="a line per epoch")
    return parser.parse_args()


def train_demo_job(spec: JobSpec, settings: TrainerSettings, verbose: bool) -> tuple[TrainingSummary, float, float]:
    """(summary, wall seconds, CPU seconds) of spec trained here as a trainer would."""

    def epoch_line(event) -> None:
        if verbose and event.type == "epoch_finished":
            print(
                f"    epoch {event.epoch:>2}  train acc {event.train_acc:.3f}  val loss {event.val_loss:.3f} "
                f"acc {event.val_acc:.3f}  {event.epoch_time_sec:.1f} s",
                flush=True,
            )

    wall, cpu = time.perf_counter(), time.process_time()
    summary = train_locally(f"demo-{uuid.uuid4().hex[:8]}", spec, settings, on_event=epoch_line)
    return summary, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    args = parse_args()
    print("command: python -m bench.demo_accuracy " + " ".join(sys.argv[1:]), flush=True)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads, load average {_load()}"
    )
    data = dataclasses.replace(DEMO_DATA, seed=args.data_seed)
    with tempfile.TemporaryDirectory() as scratch:
        data_root, artifacts = Path(scratch) / "data", Path(scratch) / "artifacts"
        started = time.perf_counter()
        counts = synthesize_demo_data(data_root, data)
        print(
            f"data: {sum(counts.values())} images of {data.size} px ({data.per_class} per class, seed {data.seed}), "
            f"drawn in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        settings = TrainerSettings(data_root=data_root, artifacts_root=artifacts, device="cpu")
        met = []
        for number, fields in enumerate(demo_specs(data.dataset, args.epochs), start=1):
            spec = JobSpec(**{**fields, "seed": fields["seed"] + args.seed_offset})
            shown = ", ".join(f"{name} {fields[name]}" for name in ("learning_rate", "dropout", "batch_size"))
            print(f"job {number}: {shown}, {spec.epochs} epochs, seed {spec.seed}; load average {_load()}", flush=True)
            summary, wall, cpu = train_demo_job(spec, settings, args.verbose)
            test_images = sum(map(sum, summary.confusion_matrix or []))
            low, high = wilson_interval(round(summary.test_accuracy * test_images), test_images)
            met.append(summary.test_accuracy >= GOAL_ACCURACY and wall <= GOAL_SECONDS)
            print(
                f"job {number}: test accuracy {summary.test_accuracy:.3f} (95 % {low:.3f}-{high:.3f}, "
                f"{test_images} images)  wall {wall:.1f} s  CPU {cpu:.1f} s  epochs run {summary.epochs_run} "
                f"(best {summary.best_epoch})  load average after {_load()}",
                flush=True,
            )
    verdict = "yes" if all(met) else "no"
    print(
        f"every job at least {GOAL_ACCURACY} test accuracy within {GOAL_SECONDS:.0f} s: {verdict} "
        f"({sum(met)} of {len(met)} jobs)"
    )


def _load() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


if __name__ == "__main__":
    main()
