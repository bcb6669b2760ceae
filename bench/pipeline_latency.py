"""Latency from a trainer publishing an event to the event being visible through the API.

    python -m bench.pipeline_latency                      # 20 trainers, 100 events/s, 60 s
    python -m bench.pipeline_latency --trainers 40 --rate 400 --seconds 30

Starts the local stack's redis-server, nx-27017, recorder and API (infra/local_stack.py) on
free ports in a temp dir, all with their default settings.

- Trainers: `--trainers` simulated trainers, each a thread with its own
  `services.trainer.events.EventPublisher` (the class a real trainer publishes through, with its
  background sender). Each sends run started, then epochs of: epoch started, `--batches`
  epoch-progress events, epoch finished; together `--rate` events per second, spread evenly.
- Observer: one client polls `GET /jobs?status=in_progress` (the live monitor's request) back
  to back. An event is visible when the run's status shows it: `current_epoch` for epoch
  started, `progress` (epoch, batch) for progress, `epochs_done` for epoch finished; a later
  event of the same run being visible counts as this one being visible too.
- Latency of an event = the time the response that first showed it arrived − the time
  `publish()` was called, one clock (the same process). It includes the publisher's batching,
  the stream, the recorder's read and MongoDB write, the API's query and the poll interval
  (printed: the mean time between two polls bounds how late an event can be seen).

Goal (issue 4): p99 under 1 s.
"""

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import redis

from services.trainer.events import EventPublisher
from shared.schemas.events import EpochFinished, EpochProgress, EpochStarted, RunStarted
from tests.utils.stack import running_stack

GOAL_P99_S = 1.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trainers", type=int, default=20)
    parser.add_argument("--rate", type=float, default=100.0, help="events per second, all trainers together")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--batches", type=int, default=8, help="progress events per epoch")
    return parser.parse_args()


class Trainer(threading.Thread):
    """Publishes one run's epoch events at `interval_s`; remembers when each was published.

    `published` holds (position, publish time) in order; a position is (epoch, step) with
    step 0 for epoch started, 1…batches for progress and batches + 1 for epoch finished.
    """

    def __init__(self, client: redis.Redis, interval_s: float, batches: int, stop: threading.Event):
        super().__init__(daemon=True)
        self.run_id = uuid.uuid4().hex
        self.publisher = EventPublisher(client, self.run_id, attempt=1)
        self.interval_s, self.batches, self.stop = interval_s, batches, stop
        self.published: list[tuple[tuple[int, int], float]] = []

    def run(self) -> None:
        self.publisher.publish(
            RunStarted,
            spec={"model_name": "custom_cnn", "dataset": "bench", "version": "bench"},
            attempt=1,
            worker="bench",
            device="cpu",
            epochs_planned=10_000,
            class_names=["a", "b", "c"],
            split_sizes={"train": 60, "val": 20, "test": 20},
        )
        epoch, next_at = 0, time.monotonic()
        while not self.stop.is_set():
            epoch += 1
            for step in range(self.batches + 2):
                next_at += self.interval_s
                if self.stop.wait(max(0.0, next_at - time.monotonic())):
                    return
                self.published.append(((epoch, step), time.time()))
                if step == 0:
                    self.publisher.publish(EpochStarted, epoch=epoch)
                elif step <= self.batches:
                    self.publisher.publish(
                        EpochProgress,
                        epoch=epoch,
                        batch=step,
                        batches=self.batches,
                        running_loss=1.0,
                        running_acc=0.5,
                        images_per_sec=100.0,
                    )
                else:
                    self.publisher.publish(
                        EpochFinished,
                        epoch=epoch,
                        train_loss=1.0,
                        train_acc=0.5,
                        val_loss=1.0,
                        val_acc=0.5,
                        epoch_time_sec=1.0,
                    )


def visible_position(job: dict, batches: int) -> tuple[int, int]:
    """The furthest event of the run its status shows (positions as in Trainer)."""
    seen = [(job.get("current_epoch") or 0, 0), (job.get("epochs_done") or 0, batches + 1)]
    if progress := job.get("progress"):
        seen.append((progress["epoch"], progress["batch"]))
    return max(seen)


def observe(
    api: httpx.Client,
    trainers: dict[str, Trainer],
    batches: int,
    stop: threading.Event,
    latencies: list[float],
    polls: list[float],
) -> None:
    """Polls the API; appends each event's latency once it is first seen."""
    seen_upto = {run_id: 0 for run_id in trainers}  # index into the trainer's `published`
    while not stop.is_set():
        response = api.get("/jobs", params={"status": "in_progress", "limit": 500})
        arrived = time.time()
        polls.append(arrived)
        response.raise_for_status()
        for job in response.json()["data"]:
            trainer = trainers.get(job["run_id"])
            if trainer is None:
                continue
            position = visible_position(job, batches)
            published = trainer.published
            index = seen_upto[trainer.run_id]
            while index < len(published) and published[index][0] <= position:
                latencies.append(arrived - published[index][1])
                index += 1
            seen_upto[trainer.run_id] = index


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="paddy-latency-") as tmp:
        with running_stack(Path(tmp), ("redis", "mongo", "recorder", "api")) as stack:
            client = redis.Redis.from_url(stack.env()["PADDY_REDIS_URL"])
            stop_trainers, stop_observer = threading.Event(), threading.Event()
            interval_s = args.trainers / args.rate
            trainers = {
                t.run_id: t
                for t in (Trainer(client, interval_s, args.batches, stop_trainers) for _ in range(args.trainers))
            }
            latencies: list[float] = []
            polls: list[float] = []
            with httpx.Client(base_url=stack.urls()["api"], timeout=30, headers={"X-API-Key": stack.api_key}) as api:
                observer = threading.Thread(
                    target=observe, daemon=True, args=(api, trainers, args.batches, stop_observer, latencies, polls)
                )
                observer.start()
                for trainer in trainers.values():  # spread the trainers over one interval
                    time.sleep(interval_s / args.trainers)
                    trainer.start()
                time.sleep(args.seconds)
                stop_trainers.set()
                for trainer in trainers.values():
                    trainer.join()
                    trainer.publisher.close()
                deadline = time.monotonic() + 30
                published = sum(len(t.published) for t in trainers.values())
                while len(latencies) < published and time.monotonic() < deadline:
                    time.sleep(0.1)
                stop_observer.set()
                observer.join()
    report(args, published, latencies, polls)


def report(args: argparse.Namespace, published: int, latencies: list[float], polls: list[float]) -> None:
    print(
        f"{platform.node()} · {platform.processor() or platform.machine()} · {os.cpu_count()} CPUs · "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{args.trainers} trainers, {args.rate:.0f} events/s for {args.seconds:.0f} s: "
        f"{published} events published, {len(latencies)} seen through the API"
    )
    gaps = [later - earlier for earlier, later in zip(polls, polls[1:])]
    print(f"API polled {len(polls)} times, every {statistics.mean(gaps) * 1000:.0f} ms on average")
    if not latencies:
        print("no event became visible")
        sys.exit(1)
    p50, p99, worst = (percentile(latencies, 0.5), percentile(latencies, 0.99), max(latencies))
    print("\n| latency publish → API | ms |\n|---|---:|")
    for name, value in (("p50", p50), ("p99", p99), ("max", worst)):
        print(f"| {name} | {value * 1000:.0f} |")
    verdict = "met" if p99 < GOAL_P99_S and len(latencies) == published else "NOT met"
    print(f"\ngoal p99 < {GOAL_P99_S * 1000:.0f} ms with every event seen: {verdict}")
    if len(latencies) < published:
        print(f"{published - len(latencies)} events never became visible within 30 s of the end")


if __name__ == "__main__":
    main()
