"""Polling until something happens, failing with what was awaited."""

import time


def wait_for(predicate, timeout_s: float, what: str):
    """predicate()'s first truthy value, polled until timeout_s; fails naming what it waited for."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def wait_for_run(api, run_id: str, *states: str, timeout_s: float = 60) -> dict:
    """The run as `GET /jobs/{run_id}` answers it once its status is one of states."""

    def reached():
        run = api.get(f"/jobs/{run_id}").json()
        return run if run["status"] in states else None

    return wait_for(reached, timeout_s, f"run {run_id} to be {' or '.join(states)}")
