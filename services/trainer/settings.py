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


def get_settings() -> TrainerSettings:
    return TrainerSettings()
