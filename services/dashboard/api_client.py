"""Everything the dashboard shows comes through here: the Paddy API over HTTP, never MongoDB.

Queries are cached for less than one refresh interval and shared by every open dashboard, so
any number of viewers costs the API about one request per query and interval.
"""

from typing import Any

import httpx
import streamlit as st

from services.dashboard.settings import get_settings

LIVE_TTL_S = get_settings().refresh_s / 2
# An unreachable host should fail fast; a slow answer gets the whole request timeout.
CONNECT_TIMEOUT_S = 3.0


class ApiUnavailable(RuntimeError):
    """No answer from the API: it is not running, PADDY_API_URL is wrong, or it is too slow."""

    def __init__(self, base_url: str, reason: str):
        super().__init__(f"the API at {base_url} is unreachable ({reason})")
        self.base_url = base_url
        self.reason = reason


class ApiError(RuntimeError):
    """The API answered with an error status."""

    def __init__(self, url: str, status_code: int, detail: str):
        super().__init__(f"GET {url} answered {status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


@st.cache_resource(show_spinner=False)
def get_client(base_url: str, timeout_s: float) -> httpx.Client:
    """One pooled client per API, shared by every session (httpx clients are thread-safe)."""
    timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, CONNECT_TIMEOUT_S))
    return httpx.Client(base_url=base_url, timeout=timeout)


def get_json(base_url: str, path: str, params: dict[str, Any] | None = None) -> Any:
    client = get_client(base_url, get_settings().request_timeout_s)
    try:
        response = client.get(path, params=params)
    except httpx.TransportError as error:
        raise ApiUnavailable(base_url, type(error).__name__) from error
    if response.is_error:
        raise ApiError(str(response.url), response.status_code, _detail(response))
    return response.json()


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text[:300]


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def list_runs(base_url: str, limit: int = 100, offset: int = 0) -> dict[str, Any]:
    """`GET /jobs`: {"data": [runs, newest first], "count": all runs}."""
    return get_json(base_url, "/jobs", {"limit": limit, "offset": offset})


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def run_epochs(base_url: str, run_id: str) -> list[dict[str, Any]]:
    """`GET /jobs/{run_id}/epochs`: the run's epochs in order; a running one has null metrics."""
    return get_json(base_url, f"/jobs/{run_id}/epochs")["data"]


def health(base_url: str) -> dict[str, Any]:
    """`GET /health` (uncached: asked only to explain an error): which backing service is down."""
    client = get_client(base_url, get_settings().request_timeout_s)
    try:
        return client.get("/health").json()
    except (httpx.TransportError, ValueError) as error:
        raise ApiUnavailable(base_url, type(error).__name__) from error
