"""Recorder throughput against the raw batched write throughput of the same MongoDB server.

    python bench/recorder_throughput.py                   # 50 runs × 100 events, batch 200
    python bench/recorder_throughput.py --runs 100 --batch-size 500 --profile

Starts its own redis-server and nx-27017 (infra/local_stack.py) on free ports in a temp dir.

- recorder: the events of `--runs` concurrent runs (run started, `--epochs` × (epoch started,
  epoch finished), run completed; interleaved as concurrent trainers send them) are put on the
  stream first; then an in-process `services.recorder.consumer.Recorder` (the class the recorder
  process runs, same settings) reads, stores and acknowledges them all. Events/s = events over
  the time from the first read to the last acknowledgement.
- raw insert_many: one document per event (the event's JSON fields, dates included) inserted
  with `insert_many(ordered=False)` in batches of `--batch-size`, into an empty collection with
  no index but _id: the fastest batched write the server does.
- raw bulk_write: the recorder's own `epochs`/`trainings` operations for the same events
  (handlers.other_writes), in one unordered bulk_write per batch, on indexed collections: what
  the recorder writes, without reading status or acknowledging.
- insert-first (a proposal, not what the recorder does): the same documents written as
  `insert_many(ordered=False)`, and only the replace-if-newer writes whose document already
  existed (duplicate key) sent again as a plain `ReplaceOne(key + seq guard, upsert=False)`.
  On nx-27017 an upsert that inserts is far slower than an insert or a replace of an existing
  document; this shows what the recorder's epoch/training writes would cost written that way.
  It reads the documents out of the handlers' operations (private pymongo attributes): fine for
  a measurement, not for the recorder.

Both baselines run in the same process against the same server, after the recorder, each into a
fresh database. The ratio printed is recorder events/s over raw insert_many events/s.
"""

import argparse
import cProfile
import io
import os
import platform
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import pymongo
import redis
from pymongo import ReplaceOne
from pymongo.errors import BulkWriteError

from infra.local_stack import LocalStack, StackConfig
from services.recorder.consumer import Recorder
from services.recorder.handlers import other_writes
from services.recorder.settings import RecorderSettings
from shared import names
from shared.store import ensure_indexes
from tests.conftest import free_port
from tests.recorder.test_crash_recovery import interleaved_events


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=49, help="per run; events per run = 2 × epochs + 2")
    parser.add_argument("--batch-size", type=int, default=200, help="recorder batch and raw write batch")
    parser.add_argument("--profile", action="store_true", help="print where the recorder's time goes")
    return parser.parse_args()


def measure_recorder(stack: LocalStack, events: list, batch_size: int, profile: bool) -> float:
    env = stack.env()
    client = redis.Redis.from_url(env["PADDY_REDIS_URL"])
    client.flushdb()
    mongo = pymongo.MongoClient(env["PADDY_MONGODB_URI"])
    db = mongo["bench_recorder"]
    ensure_indexes(db)
    pipe = client.pipeline(transaction=False)
    for event in events:
        pipe.xadd(names.EVENTS_STREAM, {"event": event.model_dump_json()})
    pipe.execute()
    settings = RecorderSettings(redis_url=env["PADDY_REDIS_URL"], consumer_name="bench",
                                batch_size=batch_size, block_ms=10, trim_interval_s=3600)
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
    assert recorder.stats.events_stored == len(events), recorder.stats
    assert db[names.EPOCHS].count_documents({}) == sum(e.type == "epoch_started" for e in events)
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(
            r"recorder/consumer.py|synchronous/collection.py", 12)
        print(out.getvalue())
    mongo.drop_database(db.name)
    return len(events) / elapsed


def measure_insert_many(stack: LocalStack, events: list, batch_size: int) -> float:
    mongo = pymongo.MongoClient(stack.env()["PADDY_MONGODB_URI"])
    collection = mongo["bench_raw_insert"]["events"]
    docs = [event.model_dump() for event in events]
    started = time.perf_counter()
    for start in range(0, len(docs), batch_size):
        collection.insert_many(docs[start:start + batch_size], ordered=False)
    elapsed = time.perf_counter() - started
    assert collection.count_documents({}) == len(docs)
    mongo.drop_database("bench_raw_insert")
    return len(events) / elapsed


def measure_bulk_write(stack: LocalStack, events: list, batch_size: int) -> float:
    mongo = pymongo.MongoClient(stack.env()["PADDY_MONGODB_URI"])
    db = mongo["bench_raw_bulk"]
    ensure_indexes(db)
    started = time.perf_counter()
    for start in range(0, len(events), batch_size):
        by_collection = defaultdict(list)
        for event in events[start:start + batch_size]:
            for collection, operation in other_writes(event):
                by_collection[collection].append(operation)
        for collection, operations in by_collection.items():
            db[collection].bulk_write(operations, ordered=False)
    elapsed = time.perf_counter() - started
    mongo.drop_database("bench_raw_bulk")
    return len(events) / elapsed


def _whole_document(operation) -> dict:
    doc = operation._doc
    return dict(doc.get("$setOnInsert", doc))  # UpdateOne($setOnInsert) or ReplaceOne


def measure_insert_first(stack: LocalStack, events: list, batch_size: int) -> float:
    mongo = pymongo.MongoClient(stack.env()["PADDY_MONGODB_URI"])
    db = mongo["bench_insert_first"]
    ensure_indexes(db)
    started = time.perf_counter()
    for start in range(0, len(events), batch_size):
        by_collection = defaultdict(list)
        for event in events[start:start + batch_size]:
            for collection, operation in other_writes(event):
                by_collection[collection].append(operation)
        for collection, operations in by_collection.items():
            try:
                db[collection].insert_many([_whole_document(op) for op in operations], ordered=False)
                continue
            except BulkWriteError as error:
                existing = [operations[e["index"]] for e in error.details["writeErrors"] if e["code"] == 11000]
            replaces = [ReplaceOne(op._filter, op._doc) for op in existing if isinstance(op, ReplaceOne)]
            if replaces:
                db[collection].bulk_write(replaces, ordered=False)
    elapsed = time.perf_counter() - started
    assert db[names.EPOCHS].count_documents({"finished_at": None}) == 0
    mongo.drop_database("bench_insert_first")
    return len(events) / elapsed


def main() -> None:
    args = parse_args()
    events = interleaved_events(args.runs, args.epochs)
    print(f"command: python {' '.join(sys.argv)}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"events: {len(events)} ({args.runs} runs × {2 * args.epochs + 2}), batch {args.batch_size}")
    with tempfile.TemporaryDirectory() as state_dir:
        config = StackConfig(state_dir=Path(state_dir), services=("redis", "mongo"),
                             redis_port=free_port(), mongo_port=free_port())
        with LocalStack(config) as stack:
            recorder = measure_recorder(stack, events, args.batch_size, args.profile)
            raw = measure_insert_many(stack, events, args.batch_size)
            bulk = measure_bulk_write(stack, events, args.batch_size)
            insert_first = measure_insert_first(stack, events, args.batch_size)
    print(f"recorder (in-process Recorder, read + store + ack): {recorder:8.0f} events/s")
    print(f"raw insert_many, one document per event:           {raw:8.0f} events/s")
    print(f"raw bulk_write of the recorder's epoch/training ops: {bulk:6.0f} events/s")
    print(f"insert-first of the same documents (proposal):      {insert_first:8.0f} events/s")
    print(f"ratio recorder / raw insert_many: {recorder / raw:.2f} (goal ≥ 0.8)")
    print(f"ratio recorder / raw bulk_write of its own epoch/training ops: {recorder / bulk:.2f}")


if __name__ == "__main__":
    main()
