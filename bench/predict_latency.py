"""One photo through POST /predict: the production model's ONNX path against the Celery path.

    python -m bench.predict_latency                      # MobileNetV2, 224 px, 3 rounds × 100 photos
    python -m bench.predict_latency --model custom_cnn --rounds 5 --photos 200

Starts the local stack (redis-server, nx-27017, recorder, API, one trainer with its predictor;
infra/local_stack.py) on free ports in a temp dir, trains a one-epoch run of --model on a small
synthetic dataset (the weights do not matter to latency: `weights: none`), exports it to ONNX
through the API (POST /jobs/{id}/export, made by the trainer with its parity check), then times
one 224 px PNG photo posted to POST /predict on one kept-alive connection, alternating by round:

- **predictor**: the run holds no alias; the API sends the photo to the predict queue and a
  predictor worker answers with PyTorch (Celery round trip; the model already loaded there).
- **onnx**: the run is promoted to `production`; the API answers in its own process from the
  ONNX export with onnxruntime (PADDY_ONNX_THREADS threads, --onnx-threads).

Each answer's `served_by` is checked, so a round measures the path it names. The first photos of
each round are a warm-up (models loaded, connections made) and not counted. Prints p50 and p95 per
path and their ratio.

Goal (issue 17): p95 < 50 ms on the ONNX path with MobileNetV2 on this 2-core CPU.
"""

import argparse
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image

from shared.datasets.synth import synthesize_dataset
from tests.utils.stack import TRAINING_STACK, api_client, queue_job, running_stack
from tests.utils.waiting import wait_for, wait_for_run

GOAL_P95_S = 0.050
DATASET = "leaves"
WARM_UP = 5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each path, alternating")
    parser.add_argument("--photos", type=int, default=100, help="photos per round, after the warm-up")
    parser.add_argument("--onnx-threads", type=int, default=1, help="PADDY_ONNX_THREADS of the API")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {"PADDY_ONNX_THREADS": str(args.onnx_threads), "PADDY_PREDICT_TIMEOUT_S": "30"}
        with running_stack(Path(tmp), TRAINING_STACK, env=env) as stack:
            synthesize_dataset(Path(tmp) / "data" / DATASET, per_class=12, size=args.image_size, seed=3)
            api = api_client(stack, timeout_s=60)
            run_id = trained_and_exported(api, args)
            photo = png_photo(Path(tmp) / "data" / DATASET / "Brownspot" / "0000.png", args.image_size)
            times: dict[str, list[float]] = {"predictor": [], "onnx": []}
            for round_number in range(args.rounds):
                for path in ("predictor", "onnx"):
                    set_production(api, run_id, path == "onnx")
                    times[path] += timed_predictions(api, run_id, photo, path, args.photos)
                    print(
                        f"round {round_number + 1}: {path} p95 {percentile(times[path][-args.photos :], 95) * 1e3:.1f} ms"
                    )
    report(times, args)
    return 0 if percentile(times["onnx"], 95) < GOAL_P95_S else 1


def trained_and_exported(api: httpx.Client, args: argparse.Namespace) -> str:
    run_id = queue_job(
        api, model_name=args.model, weights="none", epochs=1, image_size=args.image_size, batch_size=12, dataset=DATASET
    )
    wait_for_run(api, run_id, "completed", timeout_s=600)
    response = api.post(f"/jobs/{run_id}/export", json={"format": "onnx"})
    assert response.status_code == 202, response.text

    def exported():
        state = api.get(f"/jobs/{run_id}/export/status").json()
        assert state["status"] in ("queued", "running", "completed"), state
        return state if state["status"] == "completed" else None

    state = wait_for(exported, 600, f"the export of run {run_id}")
    parity = state["report"]["parity"]
    print(
        f"run {run_id}: {args.model} exported, parity max |diff| {parity['max_abs_diff']:.1e} on {parity['images']} images"
    )
    return run_id


def set_production(api: httpx.Client, run_id: str, production: bool) -> None:
    aliases = api.get(f"/jobs/{run_id}").json().get("aliases", [])
    if production and "production" not in aliases:
        body = {"run_id": run_id, "alias": "production", "reason": "latency bench"}
        response = api.post("/registry/promote", json=body)
    elif not production and "production" in aliases:
        body = {"dataset": DATASET, "alias": "production", "reason": "latency bench"}
        response = api.post("/registry/demote", json=body)
    else:
        return
    assert response.status_code in (200, 201), response.text


def png_photo(source: Path, size: int) -> bytes:
    out = io.BytesIO()
    Image.open(source).convert("RGB").resize((size, size)).save(out, format="PNG")
    return out.getvalue()


def timed_predictions(api: httpx.Client, run_id: str, photo: bytes, path: str, count: int) -> list[float]:
    """Seconds per POST /predict, the warm-up left out; every answer must come from `path`."""
    times = []
    for i in range(WARM_UP + count):
        started = time.perf_counter()
        response = api.post("/predict", data={"run_id": run_id}, files={"file": ("leaf.png", photo, "image/png")})
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.text
        assert response.json()["served_by"] == path, response.json()
        if i >= WARM_UP:
            times.append(elapsed)
    return times


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def report(times: dict[str, list[float]], args: argparse.Namespace) -> None:
    print(
        f"\n{args.model}, {args.image_size} px PNG, one kept-alive connection, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, API onnxruntime threads {args.onnx_threads}"
    )
    print(f"{'path':<10} {'photos':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for path, values in times.items():
        print(
            f"{path:<10} {len(values):>6} {percentile(values, 50) * 1e3:>8.1f} {percentile(values, 95) * 1e3:>8.1f} "
            f"{max(values) * 1e3:>8.1f}"
        )
    onnx_p95, celery_p95 = percentile(times["onnx"], 95), percentile(times["predictor"], 95)
    print(f"p95 predictor / onnx: {celery_p95 / onnx_p95:.1f}x")
    met = "met" if onnx_p95 < GOAL_P95_S else "NOT met"
    print(f"onnx p95 {onnx_p95 * 1e3:.1f} ms (goal < {GOAL_P95_S * 1e3:.0f} ms): {met}")


if __name__ == "__main__":
    sys.exit(main())
