from functools import lru_cache

from shared.settings import PaddySettings


class ApiSettings(PaddySettings):
    # Seconds a POST /jobs waits for the broker before answering 503.
    broker_timeout_s: float = 5.0


@lru_cache
def get_settings() -> ApiSettings:
    return ApiSettings()
