"""retry_with_backoff: the loop the recorder uses to wait out Redis and MongoDB outages."""

import pytest

from services.recorder import retry
from services.recorder.retry import retry_with_backoff


@pytest.fixture
def slept(monkeypatch):
    delays = []
    monkeypatch.setattr(retry.time, "sleep", delays.append)
    return delays


def failing(times: int, error: Exception):
    calls = []

    def action():
        calls.append(1)
        if len(calls) <= times:
            raise error
        return len(calls)

    return action


def test_retries_with_doubling_delays_up_to_the_cap_then_returns_the_result(slept):
    seen = []
    result = retry_with_backoff(
        failing(4, ConnectionError("down")),
        ConnectionError,
        lambda error, delay: seen.append((str(error), delay)),
        0.5,
        3.0,
    )
    assert result == 5
    assert slept == [0.5, 1.0, 2.0, 3.0]
    assert seen == [("down", 0.5), ("down", 1.0), ("down", 2.0), ("down", 3.0)]


def test_other_errors_are_not_retried(slept):
    with pytest.raises(ValueError):
        retry_with_backoff(failing(1, ValueError("bad")), ConnectionError, lambda *_: None, 0.5, 3.0)
    assert slept == []


def test_should_stop_ends_the_wait_after_a_failed_call(slept):
    action = failing(10, ConnectionError("down"))
    assert (
        retry_with_backoff(action, ConnectionError, lambda *_: None, 1.0, 8.0, should_stop=lambda: len(slept) == 2)
        is None
    )
    assert slept == [1.0, 2.0]
