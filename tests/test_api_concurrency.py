"""200 concurrent POST /jobs against a real uvicorn process: exactly 200 runs, each queued once.

No trainer runs, so every Celery message stays in the broker's `training` list, where they are
counted and read back.
"""

import asyncio
import base64
import json

import httpx
import pytest
import redis

from shared import names
from shared.datasets.synth import synthesize_dataset
from tests.utils.stack import running_stack

CONCURRENT_JOBS = 200

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(tmp_path):
    with running_stack(tmp_path / "stack", ("redis", "mongo", "api")) as running:
        synthesize_dataset(running.state_dir / "data" / "leaves", per_class=3, size=32, seed=0)
        yield running


async def post_all(url: str, api_key: str, count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits, headers={"X-API-Key": api_key}) as client:
        body = {"model_name": "custom_cnn", "dataset": "leaves", "epochs": 1, "image_size": 32}
        return await asyncio.gather(*(client.post("/jobs", json=body) for _ in range(count)))


def test_concurrent_posts_create_each_run_once_and_queue_it_once(stack):
    url = stack.urls()["api"]
    responses = asyncio.run(post_all(url, stack.api_key, CONCURRENT_JOBS))
    assert [r.status_code for r in responses] == [202] * CONCURRENT_JOBS
    created = [r.json() for r in responses]
    run_ids = {c["run_id"] for c in created}
    assert len(run_ids) == CONCURRENT_JOBS
    assert {c["version"] for c in created} == {f"v{i}" for i in range(1, CONCURRENT_JOBS + 1)}

    broker = redis.Redis.from_url(stack.env()["PADDY_REDIS_URL"])
    assert broker.llen(names.TRAINING_QUEUE) == CONCURRENT_JOBS
    messages = [json.loads(raw) for raw in broker.lrange(names.TRAINING_QUEUE, 0, -1)]
    assert sorted(m["headers"]["id"] for m in messages) == sorted(run_ids)  # task id = run id, once each
    assert {json.loads(base64.b64decode(m["body"]))[0][0] for m in messages} == run_ids
    assert {m["headers"]["task"] for m in messages} == {names.TRAIN_TASK}

    listing = httpx.get(f"{url}/jobs", params={"limit": 500}).json()
    assert listing["count"] == CONCURRENT_JOBS
    assert {run["run_id"] for run in listing["data"]} == run_ids
    assert {run["status"] for run in listing["data"]} == {"queued"}
    assert broker.xlen(names.EVENTS_STREAM) == CONCURRENT_JOBS  # one run_queued event each
