"""Small chores repeated beside the real work: a function called every interval from a thread.

The trainer's heartbeat, cancel flag, broker-message refresh and worker presence, and the
recorder's reaper, each do one small thing every few seconds. They wait on an Event rather than
sleep, so that stopping never waits out an interval, and run on a daemon thread, so that a call
stuck on the network never keeps the process from exiting.
"""

import threading
from collections.abc import Callable
from typing import Self


class Periodic:
    """Calls `tick` every interval_s seconds from a daemon thread named `name`, until stopped.

    With at_once the first call comes as soon as the thread starts, else after one interval.
    Start and stop it, or use it as a context manager. `tick` may call stop() itself to end the
    loop. An exception from tick ends the thread (threading.excepthook reports it), so each tick
    handles the errors it expects.
    """

    def __init__(self, tick: Callable[[], object], interval_s: float, name: str, at_once: bool = False):
        self._tick = tick
        self._interval_s = interval_s
        self._at_once = at_once
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        """No call after this returns; a call under way is waited for, unless tick itself stops."""
        self._stopping.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        if self._at_once and not self._stopping.is_set():
            self._tick()
        while not self._stopping.wait(self._interval_s):
            self._tick()
