import re
from functools import cached_property, lru_cache
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator

from shared.settings import PaddySettings

# The placeholder of .env.example: refused outside development.
EXAMPLE_API_KEY = "change-me"
# A key's label: who moved a model in the registry (services/api/routes/registry.py).
KEY_LABEL_PATTERN = r"^[a-z0-9_-]{1,64}$"


def parse_api_keys(text: str) -> dict[str, str]:
    """PADDY_API_KEYS ("label:key,label:key") as label → key; a ValueError names the entry by
    its position and label, never its key."""
    keys: dict[str, str] = {}
    for position, entry in enumerate(text.split(","), start=1):
        label, colon, key = entry.strip().partition(":")
        if not colon or not re.fullmatch(KEY_LABEL_PATTERN, label):
            raise ValueError(f"entry {position} must be label:key with a label of 1-64 characters a-z, 0-9, '_' or '-'")
        if not key.strip():
            raise ValueError(f"entry {position} ({label}) has an empty key")
        if label in keys:
            raise ValueError(f"label {label} is given twice")
        if key in keys.values():
            raise ValueError(f"entry {position} ({label}) repeats the key of another label")
        keys[label] = key
    return keys


class ApiSettings(PaddySettings):
    # Clients send it as the X-API-Key header (POST and DELETE always; reads while api_read_open
    # is false). Required: no default.
    api_key: SecretStr
    # The label PADDY_API_KEY goes by in the registry's history.
    api_key_label: str = Field("default", pattern=KEY_LABEL_PATTERN)
    # More keys, one per person or tool, each with its label: "label:key,label:key". Each works
    # like PADDY_API_KEY; the label says who promoted or demoted a model. Optional.
    api_keys: SecretStr | None = None
    api_read_open: bool = True
    # "development" (the local stack, the tests) accepts the example key of .env.example.
    environment: Literal["development", "production"] = "production"
    # Seconds a POST /jobs waits for the broker before answering 503.
    broker_timeout_s: float = 5.0
    # Most runs one POST /sweeps may queue (the grid's cartesian product, a search's max_runs).
    max_sweep_runs: int = Field(100, ge=1)
    # Seconds between two passes of the sweep driver (services/api/sweep_driver.py): how soon a
    # finished epoch is judged by the pruner and a finished run replaced by the next trial.
    sweep_poll_s: float = Field(1.0, gt=0)
    # Largest request body in bytes (413 past it, counted while the body is read); POST /predict
    # has max_upload_bytes instead.
    max_body_bytes: int = Field(1024 * 1024, ge=1)
    # POST /predict: largest upload in bytes and largest image in pixels (width × height, read
    # from the header before any decoding: decompression bombs are refused).
    max_upload_bytes: int = Field(10 * 1024 * 1024, ge=1)
    max_image_pixels: int = Field(40_000_000, ge=1)
    # Seconds POST /predict waits for a trainer's answer before a 504.
    predict_timeout_s: float = Field(60.0, gt=0)
    # POST /batches (services/api/zip_upload.py): the largest zip in bytes (this request's body
    # limit); the most images a zip or a folder of the data root may hold; the most bytes a zip's
    # images may unpack to, and how many times its compressed size one image may unpack to (zip
    # bombs). Each image also has max_upload_bytes and max_image_pixels.
    max_batch_upload_bytes: int = Field(200 * 1024 * 1024, ge=1)
    max_batch_files: int = Field(5_000, ge=1)
    max_batch_unpacked_bytes: int = Field(1024 * 1024 * 1024, ge=1)
    max_compression_ratio: float = Field(100.0, ge=1)
    # Images a predictor classifies per message of a batch: a single prediction sent meanwhile
    # waits for at most one such chunk (a fraction of a second for the small models on a CPU).
    batch_chunk_images: int = Field(16, ge=1, le=1024)
    # onnxruntime threads of the production model's in-process predictions (services/api/onnx_predictions.py).
    onnx_threads: int = Field(1, ge=1, le=64)

    @field_validator("api_keys")
    @classmethod
    def labelled_keys_parse(cls, keys: SecretStr | None) -> SecretStr | None:
        if keys is not None:
            parse_api_keys(keys.get_secret_value())
        return keys

    @cached_property
    def labelled_keys(self) -> dict[str, bytes]:
        """Every key the API accepts, by label: PADDY_API_KEY's and PADDY_API_KEYS'."""
        extra = parse_api_keys(self.api_keys.get_secret_value()) if self.api_keys is not None else {}
        keys = {self.api_key_label: self.api_key.get_secret_value(), **extra}
        return {label: key.encode() for label, key in keys.items()}

    def insecure_reason(self) -> str | None:
        """Why these settings must not serve, or None. Checked at startup (main.lifespan)."""
        key = self.api_key.get_secret_value()
        if not key.strip():
            return "PADDY_API_KEY is empty; set a long random key, e.g. `openssl rand -hex 32`"
        if key == EXAMPLE_API_KEY and self.environment != "development":
            return (
                "PADDY_API_KEY is the example key of .env.example; set a long random key "
                "(`openssl rand -hex 32`), or PADDY_ENVIRONMENT=development for local use"
            )
        if self.api_keys is not None:
            extra = parse_api_keys(self.api_keys.get_secret_value())
            if self.api_key_label in extra:
                return (
                    f"PADDY_API_KEYS gives the label {self.api_key_label} of PADDY_API_KEY (PADDY_API_KEY_LABEL) again"
                )
            if key in extra.values():
                return "PADDY_API_KEYS repeats PADDY_API_KEY under another label"
            if EXAMPLE_API_KEY in extra.values() and self.environment != "development":
                return "PADDY_API_KEYS holds the example key of .env.example; give each label a long random key"
        return None


class SettingsError(RuntimeError):
    """Settings the API refuses to start with; the message names them, never their values."""


@lru_cache
def get_settings() -> ApiSettings:
    try:
        settings = ApiSettings()
    except ValidationError as error:
        # pydantic's own message repeats the input values, the key among them.
        problems = "; ".join(f"PADDY_{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors())
        raise SettingsError(f"invalid API settings: {problems}") from None
    if reason := settings.insecure_reason():
        raise SettingsError(reason)
    return settings
