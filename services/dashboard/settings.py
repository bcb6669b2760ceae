from functools import lru_cache

from shared.settings import PaddySettings


class DashboardSettings(PaddySettings):
    # Where the Paddy API listens; the dashboard reads everything through it (PADDY_API_URL).
    api_url: str = "http://127.0.0.1:8000"
    # Sent as X-API-Key with every request that changes something (queue, cancel, retry,
    # predict); without it those buttons answer 401 (PADDY_API_KEY, the API's own setting).
    api_key: str | None = None
    # Seconds between two refreshes of the live parts of a page.
    refresh_s: float = 2.0
    # Seconds lists that change slowly (completed runs, models, sweeps) stay cached.
    cache_ttl_s: float = 10.0
    # Seconds one API request may take before the page reports the API as unreachable.
    request_timeout_s: float = 10.0


@lru_cache
def get_settings() -> DashboardSettings:
    return DashboardSettings()
