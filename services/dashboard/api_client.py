"""Everything the dashboard shows comes through here: the Paddy API over HTTP, never MongoDB.

Queries are cached for less than one refresh interval and shared by every open dashboard, so
any number of viewers costs the API about one request per query and interval. Writes are never
cached and carry the X-API-Key header.
"""

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx
import streamlit as st

from services.dashboard.settings import get_settings

LIVE_TTL_S = get_settings().refresh_s / 2
SLOW_TTL_S = get_settings().cache_ttl_s
# An unreachable host should fail fast; a slow answer gets the whole request timeout.
CONNECT_TIMEOUT_S = 3.0
# Predictions wait for a trainer; the API gives up after PADDY_PREDICT_TIMEOUT_S (60 s).
PREDICT_TIMEOUT_S = 90.0
# A batch's zip may take a while to upload (up to PADDY_MAX_BATCH_UPLOAD_BYTES, 200 MB).
UPLOAD_TIMEOUT_S = 300.0
# A dataset's images change rarely: their thumbnails stay cached longer than any list, at most
# this many of them (a few KB each).
THUMBNAIL_TTL_S = 600.0
THUMBNAILS_CACHED = 2000


class ApiUnavailable(RuntimeError):
    """No answer from the API: it is not running, PADDY_API_URL is wrong, or it is too slow."""

    def __init__(self, base_url: str, reason: str):
        super().__init__(f"the API at {base_url} is unreachable ({reason})")
        self.base_url = base_url
        self.reason = reason


class ApiError(RuntimeError):
    """The API answered with an error status; `detail` is its reason, made readable."""

    def __init__(self, method: str, url: str, status_code: int, detail: str):
        super().__init__(f"{method} {url} answered {status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


@st.cache_resource(show_spinner=False)
def get_client(base_url: str, timeout_s: float) -> httpx.Client:
    """One pooled client per API, shared by every session (httpx clients are thread-safe)."""
    timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, CONNECT_TIMEOUT_S))
    return httpx.Client(base_url=base_url, timeout=timeout)


def request(base_url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request; a write carries the API key. Raises ApiUnavailable or ApiError."""
    settings = get_settings()
    client = get_client(base_url, settings.request_timeout_s)
    headers = {"X-API-Key": settings.api_key} if method != "GET" and settings.api_key else {}
    try:
        response = client.request(method, path, headers=headers, **kwargs)
    except httpx.TransportError as error:
        raise ApiUnavailable(base_url, type(error).__name__) from error
    if response.is_error:
        raise ApiError(method, str(response.url), response.status_code, _detail(response))
    return response


def get_json(base_url: str, path: str, params: dict[str, Any] | None = None) -> Any:
    return request(base_url, "GET", path, params=params).json()


def _detail(response: httpx.Response) -> str:
    """The API's `detail`; a 422's list of field errors reads as 'field: message; …'."""
    try:
        detail = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        return response.text[:300]
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(str(part) for part in item.get('loc', [])[1:]) or 'request'}: {item.get('msg')}"
            for item in detail
            if isinstance(item, dict)
        )
    return str(detail)


def _params(**values: Any) -> dict[str, Any]:
    """Query parameters without the unset ones; sequences repeat (`?status=a&status=b`)."""
    return {
        name: list(value) if isinstance(value, tuple) else value
        for name, value in values.items()
        if value not in (None, (), "")
    }


def _jobs(base_url: str, **query: Any) -> dict[str, Any]:
    """`GET /jobs` with the set filters (uncached: the cached readers below call it)."""
    return get_json(base_url, "/jobs", _params(**query))


# --- reads (cached) ---------------------------------------------------------------------------


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def list_runs(
    base_url: str,
    limit: int = 100,
    offset: int = 0,
    *,
    status: tuple[str, ...] = (),
    model_name: str | None = None,
    version: str | None = None,
    sweep_id: str | None = None,
    started_after: str | None = None,
    started_before: str | None = None,
    min_val_accuracy: float | None = None,
    min_test_accuracy: float | None = None,
    sort: str | None = None,
) -> dict[str, Any]:
    """`GET /jobs` with the contract's filters: {"data": [runs], "count": all matching runs}.

    Times are ISO 8601 strings; `status` is a tuple so the call can be cached.
    """
    return _jobs(
        base_url,
        limit=limit,
        offset=offset,
        status=status,
        model_name=model_name,
        version=version,
        sweep_id=sweep_id,
        started_after=started_after,
        started_before=started_before,
        min_val_accuracy=min_val_accuracy,
        min_test_accuracy=min_test_accuracy,
        sort=sort,
    )


@st.cache_data(ttl=SLOW_TTL_S, show_spinner=False)
def completed_runs(
    base_url: str,
    limit: int,
    *,
    model_name: str | None = None,
    min_val_accuracy: float | None = None,
    sort: str | None = None,
) -> dict[str, Any]:
    """`GET /jobs?status=completed`: a finished run no longer changes, so cached for cache_ttl_s."""
    return _jobs(
        base_url,
        limit=limit,
        status=("completed",),
        model_name=model_name,
        min_val_accuracy=min_val_accuracy,
        sort=sort,
    )


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def get_run(base_url: str, run_id: str) -> dict[str, Any]:
    """`GET /jobs/{run_id}`: the run, with its `summary` once it has completed."""
    return get_json(base_url, f"/jobs/{run_id}")


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def run_epochs(base_url: str, run_id: str) -> list[dict[str, Any]]:
    """`GET /jobs/{run_id}/epochs`: the run's epochs in order; a running one has null metrics."""
    return get_json(base_url, f"/jobs/{run_id}/epochs")["data"]


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def compare(base_url: str, run_ids: tuple[str, ...]) -> dict[str, Any]:
    """`GET /compare`: {"runs": [...], "epochs": [{"epoch", "runs": {run_id: epoch | null}}]}."""
    return get_json(base_url, "/compare", {"run_ids": ",".join(run_ids)})


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def list_sweeps(base_url: str, limit: int = 100) -> dict[str, Any]:
    """`GET /sweeps`: {"data": [{"sweep_id", "kind", "created_at", "model_name", "dataset", "state"}],
    "count"}, newest first; `state` (running, finished) for random and tpe searches only."""
    return get_json(base_url, "/sweeps", {"limit": limit})


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def sweep(base_url: str, sweep_id: str, metric: str = "val_accuracy") -> dict[str, Any]:
    """`GET /sweeps/{sweep_id}`: {"sweep_id", "kind", "metric", "count", "runs", "best",
    "test_metrics" (studies), "search" (random and tpe: its trials, budget and importance)}."""
    return get_json(base_url, f"/sweeps/{quote(sweep_id, safe='')}", {"metric": metric})


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def compare_studies(base_url: str, study_ids: tuple[str, ...]) -> dict[str, Any]:
    """`GET /compare/studies`: {"studies": [...], "pairs": [...]}, each pair's paired difference."""
    return get_json(base_url, "/compare/studies", {"study_ids": ",".join(study_ids)})


@st.cache_data(ttl=SLOW_TTL_S, show_spinner=False)
def gallery(base_url: str, run_id: str, limit: int, offset: int = 0, **filters: Any) -> dict[str, Any]:
    """`GET /jobs/{run_id}/predictions`: a page of the run's test images, filtered by true_class,
    predicted_class, correct, sorted by `sort`; each with its prediction and confidence."""
    return get_json(base_url, f"/jobs/{run_id}/predictions", _params(limit=limit, offset=offset, **filters))


@st.cache_data(ttl=SLOW_TTL_S, show_spinner=False)
def run_against_run(base_url: str, run_a: str, run_b: str) -> dict[str, Any]:
    """`GET /compare/{a}/{b}/images`: the test images one run got right and the other wrong."""
    return get_json(base_url, f"/compare/{run_a}/{run_b}/images")


@st.cache_data(ttl=SLOW_TTL_S, show_spinner=False)
def models(base_url: str) -> list[dict[str, Any]]:
    """`GET /models`: [{"name", "description", "defaults"}]."""
    return get_json(base_url, "/models")["data"]


@st.cache_data(ttl=SLOW_TTL_S, show_spinner=False)
def datasets(base_url: str) -> list[dict[str, Any]]:
    """`GET /datasets`: the datasets under the data root, each with its latest audit's summary."""
    return get_json(base_url, "/datasets")["data"]


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def dataset(base_url: str, name: str) -> dict[str, Any]:
    """`GET /datasets/{name}`: the dataset with its latest audit whole (`latest_audit`)."""
    return get_json(base_url, f"/datasets/{quote(name, safe='')}")


@st.cache_data(ttl=THUMBNAIL_TTL_S, show_spinner=False, max_entries=THUMBNAILS_CACHED)
def thumbnail(base_url: str, name: str, path: str, size: int) -> bytes:
    """`GET /datasets/{name}/images/{path}`: a JPEG at most `size` pixels on its longest side."""
    return request(
        base_url, "GET", f"/datasets/{quote(name, safe='')}/images/{quote(path)}", params={"size": size}
    ).content


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def batch(base_url: str, batch_id: str) -> dict[str, Any]:
    """`GET /batches/{batch_id}`: {"state", "done", "total", "failed_images", "error", …}."""
    return get_json(base_url, f"/batches/{batch_id}")


@st.cache_data(ttl=SLOW_TTL_S, show_spinner=False)
def batch_predictions(base_url: str, batch_id: str, limit: int, offset: int = 0, **filters: Any) -> dict[str, Any]:
    """`GET /batches/{batch_id}/predictions`: a page of the batch's images with their class and
    confidence, filtered by predicted_class, sorted by `sort` (asked once the batch is done)."""
    return get_json(base_url, f"/batches/{batch_id}/predictions", _params(limit=limit, offset=offset, **filters))


@st.cache_data(ttl=SLOW_TTL_S, show_spinner=False)
def batch_csv(base_url: str, batch_id: str) -> bytes:
    """`GET /batches/{batch_id}/predictions.csv`: file, class, a probability per class, error."""
    return request(base_url, "GET", f"/batches/{batch_id}/predictions.csv").content


@st.cache_data(ttl=THUMBNAIL_TTL_S, show_spinner=False, max_entries=THUMBNAILS_CACHED)
def batch_thumbnail(base_url: str, batch_id: str, file: str, size: int) -> bytes:
    """`GET /batches/{batch_id}/images/{file}`: a JPEG at most `size` pixels on its longest side."""
    return request(base_url, "GET", f"/batches/{batch_id}/images/{quote(file)}", params={"size": size}).content


@st.cache_data(ttl=SLOW_TTL_S, show_spinner=False)
def run_heatmap(base_url: str, run_id: str, file: str) -> bytes:
    """`GET /jobs/{run_id}/heatmaps/{file}`: the test image with the run's Grad-CAM map over it (JPEG)."""
    return request(base_url, "GET", f"/jobs/{run_id}/heatmaps/{quote(file)}").content


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def registry(base_url: str, dataset: str | None = None) -> list[dict[str, Any]]:
    """`GET /registry`: the aliases held, each {"dataset", "alias", "run_id", "since", "by",
    "reason", "model_name", "version", "test_accuracy", "test_accuracy_interval"}."""
    return get_json(base_url, "/registry", _params(dataset=dataset))["data"]


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def registry_history(
    base_url: str, *, run_id: str | None = None, dataset: str | None = None, limit: int = 20
) -> dict[str, Any]:
    """`GET /registry/history`: promotions and demotions, newest first: {"data", "count"}."""
    return get_json(base_url, "/registry/history", _params(run_id=run_id, dataset=dataset, limit=limit))


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def model_card_markdown(base_url: str, run_id: str) -> str:
    """`GET /jobs/{run_id}/card.md`: the completed run's model card as Markdown."""
    return request(base_url, "GET", f"/jobs/{run_id}/card.md").text


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def export_status(base_url: str, run_id: str) -> dict[str, Any] | None:
    """`GET /jobs/{run_id}/export/status`: {"status", "requested_at", "report"}; None: never exported."""
    try:
        return get_json(base_url, f"/jobs/{run_id}/export/status")
    except ApiError as error:
        if error.status_code == 404:
            return None
        raise


def ask_export(base_url: str, run_id: str, quantize: bool) -> dict[str, Any]:
    """`POST /jobs/{run_id}/export` → {"status": "queued", …}."""
    return request(base_url, "POST", f"/jobs/{run_id}/export", json={"format": "onnx", "quantize": quantize}).json()


def exported_model(base_url: str, run_id: str, int8: bool = False) -> bytes:
    """`GET /jobs/{run_id}/export`: the ONNX file's bytes (fetched on click only)."""
    return request(base_url, "GET", f"/jobs/{run_id}/export", params={"format": "onnx", "int8": int8}).content


def checkpoint(base_url: str, run_id: str) -> bytes:
    """`GET /jobs/{run_id}/checkpoint`: the best checkpoint's bytes (fetched on click only)."""
    return request(base_url, "GET", f"/jobs/{run_id}/checkpoint").content


def health(base_url: str) -> dict[str, Any]:
    """`GET /health` (uncached: asked to explain an error or to see the API is back)."""
    client = get_client(base_url, get_settings().request_timeout_s)
    try:
        return client.get("/health").json()
    except (httpx.TransportError, ValueError) as error:
        raise ApiUnavailable(base_url, type(error).__name__) from error


# --- writes (uncached, X-API-Key) ---------------------------------------------------------------


def create_job(base_url: str, spec: dict[str, Any]) -> dict[str, Any]:
    """`POST /jobs` → {"run_id", "status", "version"}."""
    return request(base_url, "POST", "/jobs", json=spec).json()


def create_sweep(base_url: str, base: dict[str, Any], grid: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """`POST /sweeps` → {"sweep_id", "run_ids", "count"}."""
    return request(base_url, "POST", "/sweeps", json={"base": base, "grid": grid}).json()


def cancel_run(base_url: str, run_id: str) -> dict[str, Any]:
    """`POST /jobs/{run_id}/cancel` → the run as stored now."""
    return request(base_url, "POST", f"/jobs/{run_id}/cancel").json()


def retry_run(base_url: str, run_id: str) -> dict[str, Any]:
    """`POST /jobs/{run_id}/retry` → the new run's {"run_id", "status", "version"}."""
    return request(base_url, "POST", f"/jobs/{run_id}/retry").json()


def promote(base_url: str, run_id: str, alias: str, reason: str) -> dict[str, Any]:
    """`POST /registry/promote` → the history entry {"dataset", "alias", "run_id", "previous_run_id", "by", "at", …}."""
    return request(
        base_url, "POST", "/registry/promote", json={"run_id": run_id, "alias": alias, "reason": reason}
    ).json()


def demote(base_url: str, dataset: str, alias: str, reason: str) -> dict[str, Any]:
    """`POST /registry/demote` → the history entry."""
    return request(
        base_url, "POST", "/registry/demote", json={"dataset": dataset, "alias": alias, "reason": reason}
    ).json()


def queue_audit(base_url: str, name: str) -> dict[str, Any]:
    """`POST /datasets/{name}/audit` → {"dataset", "requested_at", "queued"} (false: one was waiting)."""
    return request(base_url, "POST", f"/datasets/{quote(name, safe='')}/audit").json()


def predict(
    base_url: str, run_id: str, file_name: str, content: bytes, mime: str, heatmap: bool = False
) -> dict[str, Any]:
    """`POST /predict` (multipart) → {"run_id", "class_name", "probabilities": {class: p}}, and
    "heatmap" (a base64 JPEG of the Grad-CAM overlay) when asked."""
    return request(
        base_url,
        "POST",
        "/predict",
        files={"file": (file_name, content, mime)},
        data={"run_id": run_id, "heatmap": str(heatmap).lower()},
        timeout=PREDICT_TIMEOUT_S,
    ).json()


def create_batch(
    base_url: str, run_id: str, *, folder: str | None = None, zip_name: str = "", zip_bytes: bytes | None = None
) -> dict[str, Any]:
    """`POST /batches` with a zip (multipart) or a folder of the data root →
    {"batch_id", "run_id", "images", "skipped", "skipped_count"}."""
    files = {"file": (zip_name or "images.zip", zip_bytes, "application/zip")} if zip_bytes is not None else None
    data = {"run_id": run_id} | ({"folder": folder} if folder else {})
    return request(base_url, "POST", "/batches", data=data, files=files, timeout=UPLOAD_TIMEOUT_S).json()
