"""Training time spent on publishing events: the real publisher against one that discards.

    python -m bench.publish_overhead                       # 3 rounds, 450 images at 64 px
    python -m bench.publish_overhead --rounds 5 --progress-every 10

One process trains the same tiny-but-real job (custom_cnn on a synthetic data set, through
services.trainer.training.train: checkpoints, progress, heartbeats and all) several times:
- "on": as a queued job publishes, through lifecycle.published_run: EventPublisher and its sender
  thread, XADD to a real redis-server (started here, on a free port), heartbeats;
- "off": the same calls into a publisher that drops every event.
Each round runs both, the order alternating from round to round so that drift (other processes,
CPU clocks) falls on both alike. The loop is the same in both: with progress events asked for,
it reads the running loss every `--progress-every` batches either way.

Reported: the mean epoch time (EpochMetrics.epoch_time_sec: the training pass and the
validation pass, without decoding or checkpoint writes) of each, the overhead in %, and the
spread of the per-round differences. Where other processes share the CPUs that spread is far
above 1 %, so the 'on' jobs also measure the publishing itself: the wall time spent inside
publish() calls and the CPU time of the sender thread (EventPublisher.sender_cpu_s), as a share
of the epochs' time. Last, the cost of one publish() call in a burst of events.
"""

import argparse
import os
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import redis
import torch

from services.trainer.events import EventPublisher, Heartbeater
from services.trainer.lifecycle import Attempt, published_run
from services.trainer.memory import keep_freed_memory
from services.trainer.settings import TrainerSettings
from services.trainer.training import train
from shared.datasets.synth import synthesize_dataset
from shared.schemas.events import EpochFinished, EpochProgress
from shared.schemas.jobs import JobSpec
from tests.utils.stack import running_stack


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of one 'on' and one 'off' job")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--per-class", type=int, default=150, help="synthetic images per class (3 classes)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--progress-every",
        type=int,
        default=1,
        help="epoch_progress every N batches (default 1: every batch, the worst case; trainers default to 10)",
    )
    parser.add_argument("--publish-calls", type=int, default=20_000, help="calls timed for the per-call cost")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    return parser.parse_args(argv)


class DiscardingPublisher:
    """EventPublisher's interface; every event is dropped before it is even built."""

    sender_cpu_s = 0.0

    def __init__(self, run_id: str):
        self.run_id = run_id

    def publish(self, event_type: type, **fields) -> None:
        pass

    def close(self, timeout_s: float = 30.0) -> bool:
        return True


@dataclass
class Job:
    """What one job measured."""

    epoch_times: list[float] = field(default_factory=list)  # EpochMetrics.epoch_time_sec
    publish_s: float = 0.0  # wall time inside publish() calls (training and heartbeat threads)
    events: int = 0
    sender_cpu_s: float = 0.0  # CPU time of the publisher's sender thread
    cpu_s: float = 0.0  # CPU time of the process for the whole job, all threads


def measured(publisher, job: Job) -> None:
    """Wraps publisher.publish to time each call and keep each epoch's time in job."""
    publish = publisher.publish

    def timed_publish(event_type: type, **fields) -> None:
        started = time.perf_counter()
        publish(event_type, **fields)
        job.publish_s += time.perf_counter() - started
        job.events += 1
        if event_type is EpochFinished:
            job.epoch_times.append(fields["epoch_time_sec"])

    publisher.publish = timed_publish


def train_once(publishing: bool, spec: JobSpec, settings: TrainerSettings) -> Job:
    run_id, job = f"bench-{uuid.uuid4().hex[:8]}", Job()
    cpu_started = time.process_time()
    if publishing:  # exactly as a queued job publishes (lifecycle.run_attempt)
        with published_run(run_id, settings) as (publisher, lease):
            measured(publisher, job)
            train(spec, settings, Attempt(run_id, lease.attempt, "bench", publisher, lease))
    else:
        publisher = DiscardingPublisher(run_id)
        measured(publisher, job)
        with Heartbeater(publisher, settings.heartbeat_interval_s):
            train(spec, settings, Attempt(run_id, 1, "bench", publisher))
    job.cpu_s = time.process_time() - cpu_started
    job.sender_cpu_s = publisher.sender_cpu_s  # read after close: the sender has sent everything
    return job


def publish_call_cost(settings: TrainerSettings, calls: int) -> tuple[float, float]:
    """(µs per publish() call, sender CPU µs per event), for a burst of epoch_progress events."""
    client = redis.Redis.from_url(settings.redis_url)
    publisher = EventPublisher(client, "bench-calls", attempt=1)
    fields = {"epoch": 1, "batch": 1, "batches": 10, "running_loss": 1.0, "running_acc": 0.5, "images_per_sec": 300.0}
    started = time.perf_counter()
    for _ in range(calls):
        publisher.publish(EpochProgress, **fields)
    per_call_us = (time.perf_counter() - started) / calls * 1e6
    assert publisher.close(timeout_s=120)
    client.close()
    return per_call_us, publisher.sender_cpu_s / calls * 1e6


def pct(part: float, whole: float) -> str:
    return f"{part / whole * 100:+.2f} %"


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    keep_freed_memory()  # as the trainers do (celery worker_process_init)
    with tempfile.TemporaryDirectory(prefix="paddy-publish-bench-") as tmp:
        root = Path(tmp)
        synthesize_dataset(root / "data" / "synth", per_class=args.per_class, size=args.image_size, seed=0)
        with running_stack(root / "stack", ("redis",)) as stack:
            settings = TrainerSettings(
                redis_url=stack.env()["PADDY_REDIS_URL"],
                data_root=root / "data",
                artifacts_root=root / "artifacts",
                device="cpu",
                progress_every_batches=args.progress_every,
            )
            spec = JobSpec(
                model_name="custom_cnn",
                dataset="synth",
                epochs=args.epochs,
                patience=args.epochs,
                image_size=args.image_size,
                batch_size=args.batch_size,
                weights="none",
            )
            train_once(False, spec, settings)  # warm-up: imports, first allocations
            jobs: dict[bool, list[Job]] = {True: [], False: []}
            differences = []
            for round_ in range(args.rounds):
                order = (True, False) if round_ % 2 == 0 else (False, True)
                for publishing in order:
                    job = train_once(publishing, spec, settings)
                    jobs[publishing].append(job)
                    print(
                        f"round {round_ + 1} {'on ' if publishing else 'off'}: epochs "
                        + " ".join(f"{t:.3f}" for t in job.epoch_times)
                        + f" s; {job.events} events, {job.publish_s * 1000:.1f} ms in publish(), "
                        f"sender CPU {job.sender_cpu_s * 1000:.1f} ms; job CPU {job.cpu_s:.2f} s",
                        flush=True,
                    )
                on, off = (statistics.mean(jobs[p][-1].epoch_times) for p in (True, False))
                differences.append((on - off) / off * 100)
            per_call_us, sender_us = publish_call_cost(settings, args.publish_calls)

    def mean_epoch(publishing: bool) -> float:
        return statistics.mean(t for job in jobs[publishing] for t in job.epoch_times)

    on, off = mean_epoch(True), mean_epoch(False)
    published = jobs[True]
    training_s = sum(sum(job.epoch_times) for job in published)
    publish_s = sum(job.publish_s for job in published)
    sender_s = sum(job.sender_cpu_s for job in published)
    events = sum(job.events for job in published)
    print()
    print(
        f"custom_cnn, {args.per_class * 3} images at {args.image_size} px, batch {args.batch_size}, "
        f"{args.epochs} epochs a job, {args.rounds} jobs each way, "
        f"epoch_progress every {args.progress_every} batch(es); "
        f"torch threads {torch.get_num_threads()}, nproc {os.cpu_count()}"
    )
    print(f"mean epoch time, publishing on : {on:.4f} s  ({len(jobs[True]) * args.epochs} epochs)")
    print(f"mean epoch time, publishing off: {off:.4f} s  ({len(jobs[False]) * args.epochs} epochs)")
    print(
        f"overhead (epoch time, on vs off): {pct(on - off, off)}  (per round: "
        + ", ".join(f"{d:+.2f}" for d in differences)
        + (
            f"; median {statistics.median(differences):+.2f}, sd {statistics.stdev(differences):.2f} points)"
            if len(differences) > 1
            else ")"
        )
    )
    print(
        f"measured inside the 'on' jobs: {events} events; publish() calls took {publish_s * 1000:.1f} ms "
        f"({pct(publish_s, training_s)} of their {training_s:.1f} s of epochs), the sender thread used "
        f"{sender_s * 1000:.1f} ms of CPU ({pct(sender_s, training_s)}); together "
        f"{pct(publish_s + sender_s, training_s)}, an upper bound: the sender also runs on another core"
    )
    cpu_on, cpu_off = (statistics.mean(job.cpu_s for job in jobs[p]) for p in (True, False))
    print(
        f"CPU time a job (all threads; decode and checkpoints included): on {cpu_on:.2f} s, "
        f"off {cpu_off:.2f} s, {pct(cpu_on - cpu_off, cpu_off)}"
    )
    print(
        f"a burst of {args.publish_calls} events: {per_call_us:.1f} µs a publish() call, "
        f"{sender_us:.1f} µs of sender CPU an event"
    )


if __name__ == "__main__":
    main()
