"""GET /jobs, GET /jobs/{run_id}/epochs and GET /compare at scale, over kept-alive connections.

    python -m bench.api_scale                          # 10,000 runs, 1,000,000 epoch documents
    python -m bench.api_scale --runs 1000 --epochs 20  # a quick run

Starts its own nx-27017 and redis-server (infra/local_stack.py) on free ports in a temp dir,
fills a fresh store (bench/scale.py) with `--runs` runs (status documents like the recorder's, a
`trainings` document per completed run) and `--epochs` epoch documents per run (insert_many in
big batches), then starts the API (uvicorn, one worker: see DESIGN.md on Nagle) and times each
request kind over one kept-alive httpx connection. Prints p50 / p95 per request kind and
whether p95 stays under 200 ms.
"""

import argparse
import random
import statistics
import time
from datetime import timedelta

import httpx

from bench.scale import MODEL_NAMES, START, add_size_options, filled_store, machine

GOAL_P95_MS = 200.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(client: httpx.Client, requests: list[tuple[str, dict]], warmup: int = 3) -> list[float]:
    """Milliseconds per request, each answered 200, over the client's kept-alive connection."""
    for path, params in requests[:warmup]:
        client.get(path, params=params).raise_for_status()
    timings = []
    for path, params in requests:
        started = time.perf_counter()
        response = client.get(path, params=params)
        timings.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return timings


def scenarios(runs: int, samples: int, rng: random.Random) -> dict[str, list[tuple[str, dict]]]:
    def run_id() -> str:
        return f"run{rng.randrange(runs):08d}"

    middle = (START + timedelta(minutes=10 * runs // 2)).isoformat()
    return {
        "GET /jobs (default: newest first)": [("/jobs", {})] * samples,
        "GET /jobs status=completed model_name sort=-val_accuracy": [
            ("/jobs", {"status": "completed", "model_name": rng.choice(MODEL_NAMES), "sort": "-val_accuracy"})
            for _ in range(samples)
        ],
        "GET /jobs status=completed&failed sort=test_loss offset≤1000": [
            ("/jobs", {"status": ["completed", "failed"], "sort": "test_loss", "offset": rng.randrange(0, 1000, 50)})
            for _ in range(samples)
        ],
        "GET /jobs min_val_accuracy=0.9 sort=-test_accuracy": [
            ("/jobs", {"min_val_accuracy": 0.9, "sort": "-test_accuracy"})
        ]
        * samples,
        "GET /jobs sweep_id": [
            ("/jobs", {"sweep_id": f"sweep{rng.randrange(max(1, runs // 50)):05d}"}) for _ in range(samples)
        ],
        "GET /jobs started_after sort=-start_time": [("/jobs", {"started_after": middle, "sort": "-start_time"})]
        * samples,
        "GET /jobs/{run_id}/epochs": [(f"/jobs/{run_id()}/epochs", {}) for _ in range(samples)],
        "GET /compare (10 runs)": [
            ("/compare", {"run_ids": ",".join(run_id() for _ in range(10))}) for _ in range(samples)
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_size_options(parser)
    parser.add_argument("--samples", type=int, default=100, help="timed requests per kind")
    args = parser.parse_args()
    rng = random.Random(1)

    with (
        filled_store(args.runs, args.epochs) as store,
        store.api() as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        print(f"\n{machine()}")
        print(
            f"{args.runs:,} runs, {args.runs * args.epochs:,} epochs; {args.samples} requests each, "
            "one kept-alive connection, uvicorn with one worker\n"
        )
        print(f"| request | p50 ms | p95 ms | max ms | p95 < {GOAL_P95_MS:.0f} ms |")
        print("|---|---:|---:|---:|---|")
        for name, requests in scenarios(args.runs, args.samples, rng).items():
            ms = measure(client, requests)
            p95 = percentile(ms, 0.95)
            print(
                f"| {name} | {statistics.median(ms):.1f} | {p95:.1f} | {max(ms):.1f} | "
                f"{'yes' if p95 < GOAL_P95_MS else 'NO'} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
