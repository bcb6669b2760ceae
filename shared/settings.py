"""One settings base for every service: env vars with the PADDY_ prefix (plus MONGODB_URI)."""

from pathlib import Path

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class PaddySettings(BaseSettings):
    """What every service needs to reach the broker, the event stream and the store."""

    model_config = SettingsConfigDict(env_prefix="PADDY_", env_file=".env", extra="ignore")

    redis_url: str = "redis://localhost:6379/0"
    # MONGODB_URI is the original system's variable; PADDY_MONGODB_URI wins when both are set.
    mongodb_uri: str = Field(
        "mongodb://localhost:27017",
        validation_alias=AliasChoices("PADDY_MONGODB_URI", "MONGODB_URI"),
    )
    mongodb_database: str = "model_logs_db"
    # Datasets named by a relative path are looked up here (a shared volume in compose).
    data_root: Path = Path(".paddy/data")
    # Checkpoints and other run files, shared by all trainers.
    artifacts_root: Path = Path(".paddy/artifacts")
    # State-dict files a job may name as its `weights` live here and nowhere else (the API
    # checks a job's file, the trainer reads it).
    weights_root: Path = Path(".paddy/weights")
    # The dead-letter stream keeps about this many entries (approximate MAXLEN). The events
    # stream has no cap: the recorder trims only what is acknowledged (recorder/trimming.py).
    dead_letter_maxlen: int = 100_000


class LivenessSettings(PaddySettings):
    """The timings that decide when a silent trainer's job moves on; they must agree, so they
    live here, read by the trainers and the recorder alike, and are checked at start-up.

    A running attempt renews its lease (services/trainer/lease.py), refreshes its broker message
    (services/trainer/visibility.py) and publishes a heartbeat every heartbeat_interval_s. When
    it falls silent at time t (killed, paused, cut off):
    - its lease expires by t + lease_ttl_s;
    - its run shows `lost` by t + heartbeat_timeout_s + reap_interval_s (the recorder's reaper);
    - its job is delivered again no sooner than t - heartbeat_interval_s + visibility_timeout_s.
    So a job is delivered again only after its lease has expired, and a run shows `lost` no
    later than it is delivered again. With the defaults: lease gone after 30 s, `lost` after
    45-50 s, the job back on a trainer after 50-65 s (kombu looks for expired messages every
    5 s, celeryconfig's unacked_restore_interval).
    """

    # Seconds between two heartbeats (and lease renewals, and broker message refreshes).
    heartbeat_interval_s: float = Field(10.0, gt=0)
    # Seconds a lease lasts without renewal; renewal may fail once without losing it.
    lease_ttl_s: float = Field(30.0, gt=0)
    # Seconds a job's broker message may go unrefreshed before another trainer gets the job.
    visibility_timeout_s: float = Field(60.0, gt=0)
    # Seconds without any event from a running run before it is marked `lost`.
    heartbeat_timeout_s: float = Field(45.0, gt=0)
    # Seconds between two looks for silent runs.
    reap_interval_s: float = Field(5.0, gt=0)

    @model_validator(mode="after")
    def timings_agree(self) -> "LivenessSettings":
        beat = self.heartbeat_interval_s
        rules = [
            (
                self.lease_ttl_s >= 2 * beat,
                f"PADDY_LEASE_TTL_S ({self.lease_ttl_s:g}) must be at least twice PADDY_HEARTBEAT_INTERVAL_S "
                f"({beat:g}): a lease must survive one missed renewal",
            ),
            (
                self.heartbeat_timeout_s >= 2 * beat,
                f"PADDY_HEARTBEAT_TIMEOUT_S ({self.heartbeat_timeout_s:g}) must be at least twice "
                f"PADDY_HEARTBEAT_INTERVAL_S ({beat:g}): a live run must not look lost",
            ),
            (
                self.lease_ttl_s + beat <= self.visibility_timeout_s,
                f"PADDY_LEASE_TTL_S + PADDY_HEARTBEAT_INTERVAL_S ({self.lease_ttl_s + beat:g}) must not exceed "
                f"PADDY_VISIBILITY_TIMEOUT_S ({self.visibility_timeout_s:g}): a job may be delivered again only "
                "after its lease has expired",
            ),
            (
                self.heartbeat_timeout_s + self.reap_interval_s + beat <= self.visibility_timeout_s,
                f"PADDY_HEARTBEAT_TIMEOUT_S + PADDY_REAP_INTERVAL_S + PADDY_HEARTBEAT_INTERVAL_S "
                f"({self.heartbeat_timeout_s + self.reap_interval_s + beat:g}) must not exceed "
                f"PADDY_VISIBILITY_TIMEOUT_S ({self.visibility_timeout_s:g}): a run must show lost before "
                "its job is delivered again",
            ),
        ]
        broken = [message for holds, message in rules if not holds]
        if broken:
            raise ValueError("; ".join(broken))
        return self
