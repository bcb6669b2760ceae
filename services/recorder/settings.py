import socket

from pydantic import Field

from shared.settings import PaddySettings


class RecorderSettings(PaddySettings):
    # Name within the consumer group; a restarted recorder with the same name re-reads its own
    # pending messages first. Give each recorder replica its own name.
    consumer_name: str = Field(default_factory=socket.gethostname)
    # Most entries read (and written to MongoDB in one bulk write) at a time.
    batch_size: int = 200
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


def get_settings() -> RecorderSettings:
    return RecorderSettings()
