"""`paddy up`'s supervisor: keeps the local stack running, as compose's `restart: unless-stopped`.

The supervisor owns the services' processes. A service that exits is started again after a
delay that doubles with each quick crash (Backoff); each exit and restart is written to the
service's log and to logs/supervisor.log, and every change to stack.json (pid, start time,
restarts, status). SIGTERM, SIGINT or SIGHUP stops the whole stack, restarted services included.

`paddy up` runs it in the foreground; `paddy up --detach` runs it as
`python -m infra.supervisor STATE_DIR/supervisor.json` in a session of its own. `paddy restart`
drops a request file in STATE_DIR/control/, `paddy down` sends SIGTERM (local_stack.py).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from infra.local_stack import (
    POLL_INTERVAL_S,
    SUPERVISOR_STOP_S,
    LocalStack,
    StackConfig,
    StackError,
    StackStopped,
    read_recorded_stack,
    repo_root,
    running_recorded,
)

CONFIG_FILE = "supervisor.json"
LOG_FILE = "supervisor.log"
# `paddy restart NAME` creates CONTROL_DIR/restart-NAME; the supervisor deletes it once NAME is
# started again.
CONTROL_DIR = "control"
RESTART_REQUEST_PREFIX = "restart-"
TICK_S = 0.25
# How long `paddy up --detach` waits for the stack to be ready: every service has its own ready
# timeout, this only bounds a supervisor that hangs.
DETACHED_START_TIMEOUT_S = 600.0
# How long `paddy restart` waits for the services it restarts to be ready again.
RESTART_TIMEOUT_S = 180.0
LOG_TAIL_LINES = 20

log = logging.getLogger("paddy.supervisor")


@dataclass(frozen=True)
class Backoff:
    """How long to wait before starting a crashed service again.

    first_s after its first crash, and after a crash of a service that had stayed up for at
    least reset_after_s; each quicker crash multiplies the previous delay by factor, up to max_s.
    """

    first_s: float = 0.5
    factor: float = 2.0
    max_s: float = 30.0
    reset_after_s: float = 30.0

    def __post_init__(self) -> None:
        if not 0 < self.first_s <= self.max_s or self.factor < 1 or self.reset_after_s < 0:
            raise ValueError(f"invalid {self}: need 0 < first_s <= max_s, factor >= 1 and reset_after_s >= 0")

    def delay_s(self, previous_delay_s: float | None, uptime_s: float) -> float:
        """The delay before starting again a service that exited after uptime_s seconds up."""
        if previous_delay_s is None or uptime_s >= self.reset_after_s:
            return self.first_s
        return min(previous_delay_s * self.factor, self.max_s)


@dataclass
class _Watch:
    """What the supervisor follows of one service from one tick to the next."""

    spawned_at: float  # time.monotonic() when its current process was started
    log_offset: int = 0
    ready: bool = True
    # The delay before its last restart: the next one grows from it (Backoff).
    delay_s: float | None = None
    # Set while it waits to be started again (time.monotonic()).
    restart_at: float | None = None


class Supervisor:
    """Starts a LocalStack, restarts what crashes, serves `paddy restart`, stops on a signal."""

    def __init__(self, stack: LocalStack, backoff: Backoff | None = None):
        self.stack = stack
        self.backoff = backoff or Backoff()
        self.control_dir = stack.state_dir / CONTROL_DIR
        self._watches: dict[str, _Watch] = {}
        self._stop_requested = False

    def run(self, on_ready: Callable[[LocalStack], None] | None = None) -> int:
        """Start the stack, keep it up until a stop signal, stop it; returns the exit status."""
        previous_handlers = self._catch_stop_signals()
        try:
            self.stack.supervisor_pid = os.getpid()
            try:
                self.stack.start(should_stop=lambda: self._stop_requested)
            except StackStopped:
                log.info("stopped while starting")
                return 0
            except StackError as error:
                log.error("%s", error)
                return 1
            self._clear_requests()
            now = time.monotonic()
            self._watches = {
                name: _Watch(spawned_at=now - self.stack.uptime_s(name)) for name in self.stack.service_names
            }
            log.info("supervising %s (pid %d)", ", ".join(self.stack.service_names), os.getpid())
            if on_ready is not None:
                on_ready(self.stack)
            while not self._stop_requested:
                self.tick()
                time.sleep(TICK_S)
            log.info("stopping the stack")
            return 0
        finally:
            # Also after an unexpected error: no service outlives its supervisor.
            self.stack.stop()
            for signum, handler in previous_handlers.items():
                signal.signal(signum, handler)

    def tick(self) -> None:
        """One look at every service: restart the crashed, note the ready, serve requests."""
        for name, watch in self._watches.items():
            if watch.restart_at is not None:
                if time.monotonic() >= watch.restart_at:
                    self._start(name)
                continue
            code = self.stack.reap(name)
            if code is not None:
                self._crashed(name, f"exited with {_describe_exit(code)}")
            elif not watch.ready:
                self._check_ready(name)
        self._serve_restart_requests()

    # --- one service ---------------------------------------------------------------------------

    def _crashed(self, name: str, what: str) -> None:
        watch = self._watches[name]
        now = time.monotonic()
        uptime_s = now - watch.spawned_at
        watch.delay_s = self.backoff.delay_s(watch.delay_s, uptime_s)
        watch.restart_at = now + watch.delay_s
        watch.ready = False
        message = f"{name} {what} after {uptime_s:.1f} s; restarting it in {watch.delay_s:g} s"
        log.warning("%s", message)
        self.stack.log_note(name, message)
        self.stack.set_status(name, "restarting")

    def _start(self, name: str) -> None:
        watch = self._watches[name]
        watch.restart_at = None
        watch.spawned_at = time.monotonic()
        watch.ready = False
        try:
            watch.log_offset = self.stack.spawn(name)
        except (OSError, StackError) as error:
            self._crashed(name, f"could not be started ({error})")
            return
        log.info("started %s again (pid %d)", name, self.stack.process(name).pid)

    def _check_ready(self, name: str) -> None:
        watch = self._watches[name]
        try:
            ready = self.stack.is_ready(name, watch.log_offset, time.monotonic() - watch.spawned_at)
        except StackError:  # it died while starting, or was not ready in time
            code = self.stack.reap(name)
            if code is None:
                self.stack.terminate(name)
            self._crashed(name, "was not ready in time" if code is None else f"exited with {_describe_exit(code)}")
            return
        if ready:
            watch.ready = True
            self.stack.set_status(name, "up")
            log.info("%s is up (pid %d)", name, self.stack.process(name).pid)

    # --- requests and signals ------------------------------------------------------------------

    def _serve_restart_requests(self) -> None:
        for request in sorted(self.control_dir.glob(f"{RESTART_REQUEST_PREFIX}*")):
            name = request.name.removeprefix(RESTART_REQUEST_PREFIX)
            if name in self._watches:
                log.info("restarting %s (paddy restart)", name)
                self.stack.log_note(name, f"restarting {name} (paddy restart)")
                self.stack.terminate(name)
                # Asked for, not a crash: the next crash starts the backoff over.
                self._watches[name].delay_s = None
                self._start(name)
            else:
                log.warning("no service %r to restart; this stack has %s", name, self.stack.service_names)
            request.unlink(missing_ok=True)

    def _clear_requests(self) -> None:
        """Requests left by an earlier stack are not for this one."""
        self.control_dir.mkdir(parents=True, exist_ok=True)
        for request in self.control_dir.glob(f"{RESTART_REQUEST_PREFIX}*"):
            request.unlink(missing_ok=True)

    def _catch_stop_signals(self) -> dict:
        """SIGTERM (`paddy down`), SIGINT (Ctrl-C) and SIGHUP end the loop; stopping is not cut short."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            previous[signum] = signal.signal(signum, self.request_stop)
        return previous

    def request_stop(self, _signum=None, _frame=None) -> None:
        """Stop the stack and return from run(); also the handler of the stop signals."""
        # Only a flag, safe in a signal handler: the loop and start()'s waits look at it.
        self._stop_requested = True


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


# --- paddy up / paddy up --detach / paddy restart --------------------------------------------


def run_foreground(config: StackConfig, on_ready: Callable[[LocalStack], None] | None = None) -> int:
    """`paddy up`: supervise the stack in this process; logs on stderr and in supervisor.log."""
    stack = LocalStack(config)
    stack.log_dir.mkdir(parents=True, exist_ok=True)
    _log_to(sys.stderr, stack.log_dir / LOG_FILE)
    return Supervisor(stack).run(on_ready)


def start_detached(config: StackConfig) -> dict:
    """`paddy up --detach`: a supervisor in a session of its own; stack.json once all is ready."""
    stack = LocalStack(config)  # checks the services and the trainer count here, not in the child
    running = running_recorded(stack.state_dir)
    if running:
        raise StackError(
            f"a stack recorded in {stack.state_dir} is already running ({', '.join(running)}); paddy down first"
        )
    stack.log_dir.mkdir(parents=True, exist_ok=True)
    config_file = stack.state_dir / CONFIG_FILE
    write_config(config, config_file)
    log_path = stack.log_dir / LOG_FILE
    with open(log_path, "ab") as log_file:
        log_offset = log_file.tell()
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "infra.supervisor", str(config_file)],
            cwd=repo_root(),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + DETACHED_START_TIMEOUT_S
    try:
        while True:
            if supervisor.poll() is not None:
                raise StackError(f"the stack did not start; last lines of {log_path}:\n{_tail(log_path, log_offset)}")
            state = read_recorded_stack(stack.state_dir) or {}
            if state.get("ready") and (state.get("supervisor") or {}).get("pid") == supervisor.pid:
                return state
            if time.monotonic() > deadline:
                raise StackError(
                    f"the stack was not ready within {DETACHED_START_TIMEOUT_S:.0f} s; "
                    f"last lines of {log_path}:\n{_tail(log_path, log_offset)}"
                )
            time.sleep(POLL_INTERVAL_S)
    except BaseException:
        # Failed, timed out or Ctrl-C: the supervisor stops whatever it started.
        supervisor.terminate()
        supervisor.wait(SUPERVISOR_STOP_S)
        raise


def request_restart(state_dir: Path, names: list[str], timeout_s: float = RESTART_TIMEOUT_S) -> dict[str, int]:
    """`paddy restart`: have the stack's supervisor restart these services; their new pids.

    "trainer" names every trainer (trainer-1, trainer-2, ...). Returns once each is ready again.
    """
    state_dir = Path(state_dir).resolve()
    state = read_recorded_stack(state_dir) or {}
    if "supervisor" not in running_recorded(state_dir):
        raise StackError(f"no stack is running in {state_dir}; start one with paddy up")
    services = state.get("services", {})
    wanted = [
        service
        for name in names
        for service in ([s for s in services if s.startswith("trainer-")] if name == "trainer" else [name])
    ]
    unknown = [name for name in wanted if name not in services]
    if unknown or not wanted:
        raise StackError(f"no service {', '.join(map(repr, unknown or names))}; this stack has {', '.join(services)}")
    started_before = {name: services[name].get("started_at") for name in wanted}
    control_dir = state_dir / CONTROL_DIR
    control_dir.mkdir(exist_ok=True)
    for name in wanted:
        (control_dir / f"{RESTART_REQUEST_PREFIX}{name}").touch()

    deadline = time.monotonic() + timeout_s
    while True:
        state = read_recorded_stack(state_dir) or {}
        services = state.get("services", {})
        restarted = {
            name: services[name]["pid"]
            for name in wanted
            if name in services
            and services[name].get("started_at") != started_before[name]
            and services[name].get("status") == "up"
        }
        if len(restarted) == len(wanted):
            return restarted
        if "supervisor" not in running_recorded(state_dir):
            raise StackError(f"the stack in {state_dir} stopped while restarting {', '.join(wanted)}")
        if time.monotonic() > deadline:
            waiting = sorted(set(wanted) - set(restarted))
            raise StackError(f"{', '.join(waiting)} not up again within {timeout_s:.0f} s; see {state_dir / 'logs'}")
        time.sleep(POLL_INTERVAL_S)


def write_config(config: StackConfig, path: Path) -> None:
    """The stack's configuration for a detached supervisor (extra_env may hold a key: 0600)."""
    data = dataclasses.asdict(config)
    data["state_dir"] = str(Path(config.state_dir).resolve())
    data["services"] = list(config.services)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(data, file, indent=2)


def read_config(path: Path) -> StackConfig:
    data = json.loads(Path(path).read_text())
    return StackConfig(**{**data, "state_dir": Path(data["state_dir"]), "services": tuple(data["services"])})


def _tail(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as file:
            file.seek(offset)
            lines = file.read().decode(errors="replace").splitlines()
    except OSError as error:
        return f"    (cannot read the log: {error})"
    lines = [line for line in lines if line.strip()][-LOG_TAIL_LINES:]
    return "\n".join(f"    {line}" for line in lines) or "    (the log is empty)"


def _log_to(stream, log_file: Path | None = None) -> None:
    formatter = logging.Formatter("%(asctime)s supervisor: %(message)s", "%Y-%m-%d %H:%M:%S")
    handlers: list[logging.Handler] = [logging.StreamHandler(stream)]
    if log_file is not None:
        handlers.append(logging.FileHandler(log_file))
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    for handler in handlers:
        handler.setFormatter(formatter)
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def main(argv: list[str] | None = None) -> int:
    """`python -m infra.supervisor CONFIG_FILE`: what `paddy up --detach` starts."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m infra.supervisor STATE_DIR/supervisor.json", file=sys.stderr)
        return 2
    # stderr is logs/supervisor.log (start_detached): a traceback lands there too.
    _log_to(sys.stderr)
    try:
        stack = LocalStack(read_config(Path(args[0])))
    except (OSError, ValueError, TypeError, StackError) as error:
        log.error("cannot read the stack's configuration %s: %s", args[0], error)
        return 1
    return Supervisor(stack).run()


if __name__ == "__main__":
    sys.exit(main())
