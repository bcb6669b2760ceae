from typing import Literal

from pydantic import Field, model_validator

from shared.settings import LivenessSettings


class TrainerSettings(LivenessSettings):
    # Heartbeats, the run's lease and the broker's visibility timeout: shared.settings.LivenessSettings.

    # Events waiting for Redis: above event_spill_threshold (once a send has failed) they move
    # from memory to a file in the run's directory, sent first when Redis is back
    # (services/trainer/events.py). event_buffer_size bounds memory even if the sender hangs;
    # only when the file cannot be written are events dropped there, heartbeats first.
    event_spill_threshold: int = Field(1_000, ge=1)
    event_buffer_size: int = Field(10_000, ge=1)
    # Seconds one Redis call of the event sender may take (connect, or wait for an answer).
    event_socket_timeout_s: float = Field(5.0, gt=0)
    # An epoch_progress event every this many training batches (0: none).
    progress_every_batches: int = Field(10, ge=0)
    # "auto" picks cuda when available, else cpu.
    device: str = "auto"
    # On CUDA the decoded images move to the GPU when they take less than this fraction of its
    # free memory (0: never), else they wait in pinned host memory for asynchronous copies
    # (pin_memory false: plain host memory). Both are speed switches; the results are the same.
    images_on_gpu_fraction: float = Field(0.5, ge=0, le=1)
    pin_memory: bool = True
    # Images with more pixels are refused (decompression bombs).
    max_image_pixels: int = 50_000_000
    # Grad-CAM overlays kept with a run when it completes (services/trainer/run_heatmaps.py):
    # every misclassified test image first, then correct ones spread over the classes, this many
    # in all (0: none).
    heatmaps_per_run: int = Field(48, ge=0)
    # Keep freed memory in the process instead of unmapping it (services/trainer/memory.py):
    # much faster CPU training for about 50 % more peak memory.
    keep_freed_memory: bool = True
    # A job delivered this many times (its workers died each time) fails instead of running again.
    max_attempts: int = 3
    # The worker's presence key, which /health and /metrics count (services/trainer/presence.py):
    # refreshed every worker_presence_refresh_s seconds, it expires worker_presence_ttl_s seconds
    # after the last refresh, so a killed worker drops out of the count within that time.
    worker_presence_refresh_s: float = Field(5.0, gt=0)
    worker_presence_ttl_s: float = Field(15.0, gt=0)

    # GPUs (README, "GPUs"). CUDA's own variable, read here so nothing else reads the environment;
    # a pinned trainer sets it at start to the UUID of the GPU it claimed (gpu_pinning.py).
    cuda_visible_devices: str | None = Field(None, validation_alias="CUDA_VISIBLE_DEVICES")
    # "claim": at start the worker claims one GPU of the host in Redis, none that another worker of
    # its gpu_claim_group holds, and pins itself to it, so `--scale trainer=N` spreads N trainers
    # over N GPUs. "off": the worker uses what CUDA_VISIBLE_DEVICES (or the container) gives it.
    gpu_pinning: Literal["off", "claim"] = "off"
    # Workers that claim GPUs apart from each other: trainers, and separately the predictors
    # beside them (one trainer and one predictor per GPU).
    gpu_claim_group: str = Field("trainer", pattern=r"^[a-z0-9_-]{1,32}$")
    # Packing small jobs on one GPU (packing.py): MiB of GPU memory the worker's jobs may use
    # together (0: one job at a time), and the most one of its jobs uses (read it off the live
    # monitor's GPU memory). The worker runs budget // job jobs at once, at least one (its Celery
    # concurrency, fixed at start): a job larger than the budget still runs, alone.
    gpu_memory_budget_mib: int = Field(0, ge=0)
    gpu_job_memory_mib: int = Field(4096, gt=0)

    @model_validator(mode="after")
    def presence_outlives_a_late_refresh(self) -> "TrainerSettings":
        if self.worker_presence_ttl_s < 2 * self.worker_presence_refresh_s:
            raise ValueError(
                f"PADDY_WORKER_PRESENCE_TTL_S ({self.worker_presence_ttl_s:g}) must be at least twice "
                f"PADDY_WORKER_PRESENCE_REFRESH_S ({self.worker_presence_refresh_s:g}): a busy worker "
                "whose refresh comes late must still be counted"
            )
        return self


def get_settings() -> TrainerSettings:
    return TrainerSettings()
