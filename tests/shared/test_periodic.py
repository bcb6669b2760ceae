"""The periodic helper: calls counted with events, never timed."""

import threading

from shared.periodic import Periodic

LONG_S = 3600  # an interval no test waits out: stopping must not wait for it
BOUND_S = 10  # how long a test waits for something that happens at once


class Calls:
    """A tick that counts its calls and says when it reached `until`."""

    def __init__(self, until: int = 1):
        self.count = 0
        self.until = until
        self.reached = threading.Event()

    def __call__(self) -> None:
        self.count += 1
        if self.count >= self.until:
            self.reached.set()


def thread_named(name: str) -> bool:
    return any(thread.name == name for thread in threading.enumerate())


def test_it_calls_again_and_again_until_stopped_and_not_after():
    calls = Calls(until=3)
    periodic = Periodic(calls, 0.001, name="ticks-test").start()
    assert calls.reached.wait(BOUND_S)
    periodic.stop()
    stopped_at = calls.count
    assert not thread_named("ticks-test")  # joined: no call can come after stop
    assert calls.count == stopped_at >= 3


def test_at_once_calls_as_it_starts_and_stopping_skips_the_wait():
    calls = Calls()
    with Periodic(calls, LONG_S, name="at-once-test", at_once=True):
        assert calls.reached.wait(BOUND_S)
    assert calls.count == 1 and not thread_named("at-once-test")


def test_without_at_once_the_first_call_waits_an_interval():
    calls = Calls()
    with Periodic(calls, LONG_S, name="later-test") as periodic:
        assert periodic._thread.is_alive()
    assert calls.count == 0 and not thread_named("later-test")


def test_a_tick_can_stop_its_own_loop():
    returned = []

    def tick() -> None:
        calls()
        periodic.stop()  # from its own thread: must not wait for itself
        returned.append(True)

    calls = Calls()
    periodic = Periodic(tick, 0.001, name="self-stop-test", at_once=True)
    periodic.start()
    periodic._thread.join(BOUND_S)
    assert not periodic._thread.is_alive() and calls.count == 1 and returned == [True]
    periodic.stop()  # and stopping again from outside is harmless


def test_stopped_before_it_starts_it_never_calls():
    calls = Calls()
    periodic = Periodic(calls, 0.001, name="never-test", at_once=True)
    periodic.stop()
    periodic.start()
    periodic._thread.join(BOUND_S)
    assert not periodic._thread.is_alive() and calls.count == 0
