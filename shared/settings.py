"""One settings base for every service: env vars with the PADDY_ prefix (plus MONGODB_URI)."""

from pathlib import Path

from pydantic import AliasChoices, Field
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
    # The dead-letter stream keeps about this many entries (approximate MAXLEN). The events
    # stream has no cap: the recorder trims only what is acknowledged (recorder/trimming.py).
    events_stream_maxlen: int = 100_000
