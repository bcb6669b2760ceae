"""The local stack's processes: each service leads a process group of its own (its own session).

A recorded pid names a process only together with its start time (`start_ticks`): after a
reboot or a long while the pid may belong to an unrelated process, which is never signalled.
"""

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

# How long a process group has between SIGTERM and SIGKILL, and how often it is looked at.
STOP_GRACE_S = 10.0
POLL_INTERVAL_S = 0.2


def terminate_groups(pids: dict[str, int], is_alive: Callable[[str], bool]) -> None:
    """SIGTERM each process group, wait up to STOP_GRACE_S, SIGKILL the groups still there."""
    for name, pid in pids.items():
        if is_alive(name):
            signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while any(is_alive(name) for name in pids) and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL_S / 2)
    for pid in pids.values():
        # Also reaches children that outlived their group leader (Celery's pool processes).
        signal_group(pid, signal.SIGKILL)
    deadline = time.monotonic() + 2
    while any(is_alive(name) for name in pids) and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL_S / 2)


def signal_group(pid: int, signum: int) -> None:
    """Each service is started in its own session, so its process group id is its pid."""
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def signal_process(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def is_same_process(entry: dict) -> bool:
    """The recorded pid is alive and still the process that was recorded."""
    pid = entry.get("pid")
    if not isinstance(pid, int) or not pid_alive(pid):
        return False
    recorded = entry.get("start_ticks")
    if recorded is None or not Path("/proc").is_dir():
        return True
    return start_ticks(pid) == recorded


def is_orphaned_group(entry: dict) -> bool:
    """The recorded leader is dead but its process group lives on (e.g. Celery's pool child).

    Linux hands out no pid that still names a process group, so such a group is the service's.
    """
    pid = entry.get("pid")
    if not isinstance(pid, int) or pid_alive(pid):
        return False
    try:
        os.killpg(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state first); None if unavailable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """When the process started, in clock ticks since boot: with the pid, it names a process.

    The command line is no identity: redis-server and Celery rewrite their process titles.
    """
    fields = proc_stat(pid)
    return int(fields[19]) if fields else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = proc_stat(pid)
    # A zombie has exited; only its parent's wait() is missing.
    return not (fields and fields[0] == "Z")
