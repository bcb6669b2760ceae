"""The API's tests: its key, its cached clients, job bodies, and what its answers hold."""

import base64
import json
import struct
import zlib

from services.api import deps
from services.api import settings as api_settings
from services.api.routes import predict as predict_routes
from shared import names

API_KEY = "api-test-key-0123456789"
CACHED = (
    api_settings.get_settings,
    deps.get_store,
    deps.get_queue,
    deps.get_redis,
    deps.get_search_storage,
    predict_routes.loaded_models,
)


def clear_caches() -> None:
    for cached in CACHED:
        cached.cache_clear()


def job(**overrides) -> dict:
    return {"model_name": "custom_cnn", "dataset": "leaves", "epochs": 3, "image_size": 64, **overrides}


def detail(response) -> str:
    return str(response.json()["detail"])


def queued_tasks(redis_client, queue: str = names.TRAINING_QUEUE) -> list[tuple[str, list]]:
    """(task name, args) of each Celery message waiting in a queue's Redis list, oldest first."""
    tasks = []
    for raw in reversed(redis_client.lrange(queue, 0, -1)):  # kombu LPUSHes, workers BRPOP
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        tasks.append((message["headers"]["task"], args))
    return tasks


def metric_values(text: str) -> dict[str, float]:
    """/metrics' Prometheus text as {"name{labels}": value}."""
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims width × height pixels: a header, an empty data chunk, no pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
