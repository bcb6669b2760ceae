"""`paddy demo`: queue a few small custom-CNN jobs that finish in minutes on a CPU."""

from typing import Any

import click
import httpx

# Three variants worth comparing on the dashboard: the baseline, a faster learner and a run
# without dropout. At 96 px an epoch of the demo dataset takes a few seconds on a CPU, slow
# enough to watch the curves grow on the live monitor.
DEMO_VARIANTS: tuple[dict[str, Any], ...] = (
    {"learning_rate": 0.001, "dropout": 0.5, "seed": 1},
    {"learning_rate": 0.003, "dropout": 0.5, "seed": 2},
    {"learning_rate": 0.001, "dropout": None, "seed": 3},
)


class DemoError(click.ClickException):
    """The API refused a demo job; `paddy demo` prints the message without a traceback."""


def demo_specs(dataset: str, epochs: int) -> list[dict[str, Any]]:
    base = {"model_name": "custom_cnn", "dataset": dataset, "epochs": epochs, "image_size": 96, "batch_size": 32}
    return [{**base, **variant} for variant in DEMO_VARIANTS]


def queue_demo_jobs(api_url: str, dataset: str, epochs: int, api_key: str) -> list[tuple[str, dict]]:
    """POST each demo spec to `{api_url}/jobs` with the API key; returns (run_id, spec) for
    every queued job."""
    queued = []
    with httpx.Client(base_url=api_url.rstrip("/"), timeout=30, headers={"X-API-Key": api_key}) as client:
        for spec in demo_specs(dataset, epochs):
            try:
                response = client.post("/jobs", json=spec)
            except httpx.HTTPError as error:
                raise DemoError(f"cannot reach the API at {api_url}: {error}; is `paddy up` running?") from None
            if response.status_code == 401:
                raise DemoError("the API refused the key: pass --api-key (or set PADDY_API_KEY) to the API's key")
            if not response.is_success:
                raise DemoError(f"the API refused the job ({response.status_code}): {_api_message(response)}")
            queued.append((response.json()["run_id"], spec))
    return queued


def _api_message(response: httpx.Response) -> str:
    """FastAPI's `detail`: a string, or a list of validation errors naming their fields."""
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        return response.text
    if isinstance(detail, list):
        return "; ".join(f"{'.'.join(map(str, error.get('loc', [])))}: {error.get('msg')}" for error in detail)
    return str(detail)
