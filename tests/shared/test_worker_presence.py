"""Worker presence documents against a real redis-server: written, read back, counted."""

from shared import names
from shared.worker_presence import publish_worker, read_workers, remove_worker
from tests.utils.documents import worker_presence


def test_workers_round_trip_sorted_by_hostname_and_expire(redis_client):
    publish_worker(redis_client, worker_presence("trainer-2@box", task="paddy.train", run_id="7f3a"), ttl_s=15)
    publish_worker(redis_client, worker_presence("trainer-1@box"), ttl_s=15)
    workers = read_workers(redis_client)
    assert [w["hostname"] for w in workers] == ["trainer-1@box", "trainer-2@box"]
    assert workers[1] == worker_presence("trainer-2@box", task="paddy.train", run_id="7f3a")
    assert 0 < redis_client.pttl(names.WORKER_PRESENCE_KEY.format(hostname="trainer-1@box")) <= 15_000
    remove_worker(redis_client, "trainer-1@box")
    assert [w["hostname"] for w in read_workers(redis_client)] == ["trainer-2@box"]


def test_every_worker_is_found_among_many_other_keys(redis_client):
    # SCAN walks the keyspace a page at a time: workers on later pages count as much as the first.
    with redis_client.pipeline(transaction=False) as pipe:
        for i in range(5_000):
            pipe.set(names.ATTEMPT_KEY.format(run_id=f"run{i:05d}"), 1)
        pipe.execute()
    for i in range(1, 4):
        publish_worker(redis_client, worker_presence(f"trainer-{i}@box"), ttl_s=15)
    assert [w["hostname"] for w in read_workers(redis_client)] == ["trainer-1@box", "trainer-2@box", "trainer-3@box"]


def test_a_worker_with_an_unreadable_document_still_counts(redis_client):
    redis_client.set(names.WORKER_PRESENCE_KEY.format(hostname="trainer-7@box"), b"\xff not json", ex=15)
    assert read_workers(redis_client) == [{"hostname": "trainer-7@box"}]


def test_no_workers(redis_client):
    assert read_workers(redis_client) == []
