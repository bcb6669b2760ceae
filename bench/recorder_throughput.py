"""Recorder throughput against the raw batched write throughput of the same MongoDB server.

    python -m bench.recorder_throughput                   # 50 runs × 100 events, the recorder's batch
    python -m bench.recorder_throughput --runs 100 --batch-size 500 --repeat 3 --profile

Starts its own redis-server and nx-27017 (infra/local_stack.py) on free ports in a temp dir.

- recorder: the events of `--runs` concurrent runs (run started, `--epochs` × (epoch started,
  epoch finished), run completed; interleaved as concurrent trainers send them) are put on the
  stream first; then an in-process `services.recorder.consumer.Recorder` (the class the recorder
  process runs, same settings) reads, stores and acknowledges them all. Events/s = events over
  the time from the first read to the last acknowledgement. Afterwards the stored documents are
  checked: every epoch finished, every run completed, nothing left pending.
- raw insert_many: one document per event (the event's JSON fields, dates included) inserted
  with `insert_many(ordered=False)` in batches of `--batch-size`, into an empty collection with
  no index but _id: the fastest batched write the server does.

Both run in the same process against the same server, alternating `--repeat` times, each into a
fresh database; the ratio printed is the median recorder events/s over the median raw events/s.
Other processes on the machine move both; the load average is printed.
"""

import argparse
import cProfile
import io
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pymongo
import redis

from infra.local_stack import LocalStack
from services.recorder.consumer import Recorder
from services.recorder.settings import RecorderSettings
from shared import names
from shared.schemas.events import encode_event
from shared.store import ensure_indexes
from tests.utils.events import interleaved_events
from tests.utils.stack import running_stack


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=49, help="per run; events per run = 2 × epochs + 2")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=RecorderSettings.model_fields["batch_size"].default,
        help="recorder batch and raw write batch (default: the recorder's own default)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="measurements of each, alternating")
    parser.add_argument("--profile", action="store_true", help="print where the recorder's time goes")
    return parser.parse_args()


def measure_recorder(stack: LocalStack, events: list, batch_size: int, profile: bool) -> float:
    env = stack.env()
    client = redis.Redis.from_url(env["PADDY_REDIS_URL"])
    client.flushdb()
    mongo = pymongo.MongoClient(env["PADDY_MONGODB_URI"])
    db = mongo["bench_recorder"]
    mongo.drop_database(db.name)
    ensure_indexes(db)
    pipe = client.pipeline(transaction=False)
    for event in events:
        pipe.xadd(names.EVENTS_STREAM, encode_event(event))
    pipe.execute()
    settings = RecorderSettings(
        redis_url=env["PADDY_REDIS_URL"],
        consumer_name="bench",
        batch_size=batch_size,
        block_ms=10,
        trim_interval_s=3600,
    )
    recorder = Recorder(client, db, settings)
    recorder.ensure_group()
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    while entries := recorder._read(">"):
        recorder.process(entries)
    if profiler:
        profiler.disable()
    elapsed = time.perf_counter() - started
    check_stored(db, client, events)
    assert recorder.stats.events_stored == len(events), recorder.stats
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(
            r"recorder/consumer.py|synchronous/collection.py", 12
        )
        print(out.getvalue())
    mongo.drop_database(db.name)
    return len(events) / elapsed


def check_stored(db, client: redis.Redis, events: list) -> None:
    """The recorder was fast and also right: every document whole, every entry acknowledged."""
    runs = {e.run_id for e in events}
    epochs = sum(e.type == "epoch_started" for e in events)
    assert db[names.EPOCHS].count_documents({}) == epochs
    assert db[names.EPOCHS].count_documents({"finished_at": None}) == 0
    assert db[names.STATUS].count_documents({"status": "completed"}) == len(runs)
    assert db[names.TRAININGS].count_documents({}) == len(runs)
    assert client.xpending(names.EVENTS_STREAM, names.RECORDER_GROUP)["pending"] == 0


def measure_insert_many(stack: LocalStack, events: list, batch_size: int) -> float:
    mongo = pymongo.MongoClient(stack.env()["PADDY_MONGODB_URI"])
    collection = mongo["bench_raw_insert"]["events"]
    docs = [event.model_dump() for event in events]
    started = time.perf_counter()
    for start in range(0, len(docs), batch_size):
        collection.insert_many(docs[start : start + batch_size], ordered=False)
    elapsed = time.perf_counter() - started
    assert collection.count_documents({}) == len(docs)
    mongo.drop_database("bench_raw_insert")
    return len(events) / elapsed


def main() -> None:
    args = parse_args()
    events = interleaved_events(args.runs, args.epochs)
    print(f"command: python {' '.join(sys.argv)}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(f"events: {len(events)} ({args.runs} runs × {2 * args.epochs + 2}), batch {args.batch_size}")
    recorder, raw = [], []
    with tempfile.TemporaryDirectory() as state_dir:
        with running_stack(Path(state_dir), ("redis", "mongo")) as stack:
            for attempt in range(args.repeat):
                recorder.append(measure_recorder(stack, events, args.batch_size, args.profile and attempt == 0))
                raw.append(measure_insert_many(stack, events, args.batch_size))
    print(f"recorder (in-process Recorder, read + store + ack): {_rates(recorder)} events/s")
    print(f"raw insert_many, one document per event:           {_rates(raw)} events/s")
    ratio = statistics.median(recorder) / statistics.median(raw)
    print(
        f"ratio of medians, recorder / raw insert_many: {ratio:.2f} (goal ≥ 0.8: {'met' if ratio >= 0.8 else 'NOT met'})"
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def _rates(values: list[float]) -> str:
    return f"median {statistics.median(values):5.0f}  (each: {', '.join(f'{v:.0f}' for v in values)})"


if __name__ == "__main__":
    main()
