import socket
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from shared.settings import PaddySettings


class RecorderSettings(PaddySettings):
    # Name within the consumer group; a restarted recorder with the same name re-reads its own
    # pending messages first. Give each recorder replica its own name.
    consumer_name: str = Field(default_factory=socket.gethostname)
    # Most entries read (and written to MongoDB in one bulk write) at a time. Only a backlog
    # fills a batch (a read returns what is there), and a full batch folds an epoch's start and
    # end, and a run's many events, into one write each: bench/recorder_throughput.py measured
    # 0.53 of raw insert throughput at 200, 0.79 at 500, 0.95 at 1000.
    batch_size: int = 1000
    # How long one XREADGROUP waits for new entries, in milliseconds.
    block_ms: int = 1000
    # Entries pending this long on another consumer (a dead recorder) are claimed, in milliseconds.
    claim_idle_ms: int = 60_000
    # Seconds between two looks for such entries.
    claim_interval_s: float = 15.0
    # Seconds between two trims of the event stream, which drop the entries every consumer
    # group has acknowledged (the trainers' XADD has no MAXLEN). 0 trims after every batch.
    trim_interval_s: float = 10.0
    # Seconds to wait before retrying a batch whose MongoDB write failed (doubles up to 30 s).
    retry_backoff_s: float = 0.5
    # Longest wait, in seconds, between two attempts to reach Redis again after it went away.
    redis_backoff_max_s: float = 5.0
    # Runs whose status document the recorder keeps between batches (least recently written
    # go first); a kept copy saves a read per batch and run.
    status_cache_runs: int = 10_000
    # PADDY_WEBHOOK_URLS: comma-separated URLs that get a JSON POST when a run completes,
    # fails or is lost (services/recorder/webhooks.py). Empty: no notifications.
    webhook_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Seconds one webhook POST may take, attempts per URL, and the wait before the second
    # attempt in seconds (doubling after each).
    webhook_timeout_s: float = 5.0
    webhook_attempts: int = 3
    webhook_backoff_s: float = 1.0
    # Notifications waiting to be sent; more are dropped (and logged) rather than block recording.
    webhook_queue_size: int = 1000

    @field_validator("webhook_urls", mode="before")
    @classmethod
    def _split_urls(cls, value):
        if isinstance(value, str):
            return [url.strip() for url in value.split(",") if url.strip()]
        return value


def get_settings() -> RecorderSettings:
    return RecorderSettings()
