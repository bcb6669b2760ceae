from shared.settings import PaddySettings


class TrainerSettings(PaddySettings):
    # Seconds between heartbeat events while a job runs.
    heartbeat_interval_s: float = 10.0
    # Events held in memory while Redis is unreachable; the oldest heartbeats go first.
    event_buffer_size: int = 10_000
    # "auto" picks cuda when available, else cpu.
    device: str = "auto"
    # Images with more pixels are refused (decompression bombs).
    max_image_pixels: int = 50_000_000
    # Keep freed memory in the process instead of unmapping it (services/trainer/memory.py):
    # much faster CPU training for about 50 % more peak memory.
    keep_freed_memory: bool = True
    # Seconds an unacknowledged job may go without its worker refreshing it before the broker
    # delivers it to another worker, and how often a running job refreshes it (see visibility.py).
    visibility_timeout_s: int = 60
    visibility_refresh_s: float = 10.0
    # A job delivered this many times (its workers died each time) fails instead of running again.
    max_attempts: int = 3


def get_settings() -> TrainerSettings:
    return TrainerSettings()
