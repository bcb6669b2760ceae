"""WorkerCount: /health's cached count of live workers (pure logic, a scripted ping)."""

import threading

from services.api.deps import WorkerCount


class ScriptedQueue:
    """JobQueue's live_workers, answering from a script."""

    def __init__(self, *answers: int):
        self.answers = list(answers)
        self.pings = 0
        self.pinged = threading.Event()

    def live_workers(self, timeout_s: float) -> int:
        self.pings += 1
        self.pinged.set()
        return self.answers.pop(0)


def wait_for_background_ping(queue: ScriptedQueue, count: WorkerCount) -> None:
    assert queue.pinged.wait(5)
    for _ in range(500):  # the refresh thread stores its answer right after the ping
        with count._lock:
            if not count._refreshing:
                return
        threading.Event().wait(0.01)


def test_the_first_request_waits_for_the_ping_and_later_ones_get_the_cached_answer():
    queue, count = ScriptedQueue(2), WorkerCount(ttl_s=60)
    assert count.get(queue, 1.0) == 2
    assert count.get(queue, 1.0) == 2
    assert queue.pings == 1


def test_a_stale_answer_is_served_while_a_new_one_is_fetched():
    queue, count = ScriptedQueue(2, 3), WorkerCount(ttl_s=0)
    assert count.get(queue, 1.0) == 2
    queue.pinged.clear()
    assert count.get(queue, 1.0) == 2  # stale at once (ttl 0): served, refreshed in the background
    wait_for_background_ping(queue, count)
    assert queue.pings == 2


def test_zero_workers_is_refreshed_even_while_fresh():
    queue, count = ScriptedQueue(0, 1, 1), WorkerCount(ttl_s=60)
    assert count.get(queue, 1.0) == 0  # asked before the first worker came up
    queue.pinged.clear()
    count.get(queue, 1.0)
    wait_for_background_ping(queue, count)
    assert count.get(queue, 1.0) == 1
    assert queue.pings == 2  # 1 is fresh for the TTL: no third ping
