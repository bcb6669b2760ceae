"""`paddy up` supervises the local stack: crashed services come back, `paddy down` leaves nothing.

Real processes: the `paddy` command and its supervisor, redis-server, nx-27017 and, for the job,
the recorder, the API and a Celery trainer.
"""

import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pymongo
import pytest

from infra import local_stack, processes
from infra.local_stack import DEV_API_KEY, LocalStack
from infra.supervisor import Supervisor
from shared.datasets.synth import synthesize_dataset
from tests.utils.processes import live_group_members
from tests.utils.stack import free_ports, queue_job, stack_config
from tests.utils.waiting import wait_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
# Short liveness timings (shared.settings.LivenessSettings): a killed trainer's job is delivered
# again within seconds.
LIVENESS_ENV = {
    "PADDY_HEARTBEAT_INTERVAL_S": "1",
    "PADDY_LEASE_TTL_S": "3",
    "PADDY_VISIBILITY_TIMEOUT_S": "6",
    "PADDY_HEARTBEAT_TIMEOUT_S": "4",
    "PADDY_REAP_INTERVAL_S": "0.5",
}
# Long enough that the trainer is still training when it is killed (right after the recorder is
# back), on a fast CPU too: an epoch of 72 images at 64 px takes about 0.1-0.5 s.
EPOCHS = 40
BACK_WITHIN_S = 5


def paddy(*args: str, timeout_s: float = 300) -> subprocess.CompletedProcess:
    """The `paddy` command, run as a person runs it."""
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout_s
    )


def up_options(state_dir: Path, services: str, **ports: int) -> list[str]:
    """`paddy up`'s options for these services in state_dir: each port a free one unless given."""
    ports = dict(zip(("redis", "mongo", "api"), free_ports(3), strict=True)) | ports
    port_options = [option for name, port in ports.items() for option in (f"--{name}-port", str(port))]
    return ["--state-dir", str(state_dir), "--services", services, *port_options]


def paddy_up(state_dir: Path, services: str, *options: str) -> dict:
    """`paddy up --detach` on free ports; stack.json once it returned."""
    result = paddy("up", "--detach", *up_options(state_dir, services), *options)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "`paddy down` stops it" in result.stdout
    return recorded(state_dir)


def recorded(state_dir: Path) -> dict:
    return json.loads((state_dir / "stack.json").read_text())


def stack_pids(state_dir: Path) -> set[int]:
    """The supervisor, every service and every process in their groups, as recorded now."""
    state = recorded(state_dir)
    leaders = {entry["pid"] for entry in state["services"].values() if entry["pid"]}
    return {state["supervisor"]["pid"], *leaders, *(pid for leader in leaders for pid in live_group_members(leader))}


def assert_all_gone(pids: set[int]) -> None:
    alive = sorted(pid for pid in pids if processes.pid_alive(pid) or live_group_members(pid))
    assert not alive, f"still running: {alive}"


def status_rows(state_dir: Path) -> dict[str, dict[str, str]]:
    """`paddy status` as {service: {column: cell}}; it exits 0 while the stack runs."""
    result = paddy("status", "--state-dir", str(state_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert re.match(r"supervisor\s+pid \d+, running", lines[0]), result.stdout
    header, *rows = (re.split(r"\s{2,}", line.strip()) for line in lines[1:])
    assert header == ["SERVICE", "STATUS", "PID", "UP SINCE", "RESTARTS", "URL"]
    return {row[0]: dict(zip(header, row, strict=True)) for row in rows}


def kill_and_wait_back(state_dir: Path, name: str) -> dict:
    """SIGKILL one service's main process; its stack.json entry once another process runs it."""
    before = recorded(state_dir)["services"][name]
    os.kill(before["pid"], signal.SIGKILL)

    def back() -> dict | None:
        entry = recorded(state_dir)["services"][name]
        started = entry["pid"] not in (None, before["pid"]) and processes.pid_alive(entry["pid"])
        return entry if started else None

    entry = wait_for(back, BACK_WITHIN_S, f"{name} to run again")
    assert entry["restarts"] == before["restarts"] + 1
    message = f"{name} exited with signal SIGKILL after"
    assert message in (state_dir / "logs" / "supervisor.log").read_text()
    assert message in (state_dir / "logs" / f"{name}.log").read_text()
    return entry


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    state_dir = tmp_path / "state"
    yield state_dir
    paddy("down", "--state-dir", str(state_dir), timeout_s=120)  # whatever a failed test left running


def test_killed_recorder_and_trainer_come_back_and_the_job_completes(state_dir):
    env = [option for name, value in LIVENESS_ENV.items() for option in ("--env", f"{name}={value}")]
    state = paddy_up(state_dir, "redis,mongo,recorder,api,trainer", *env)
    seen = stack_pids(state_dir)
    synthesize_dataset(state_dir / "data" / "leaves", per_class=40, size=64, seed=1)
    api = httpx.Client(base_url=state["urls"]["api"], timeout=10, headers={"X-API-Key": DEV_API_KEY})
    run_id = queue_job(api, epochs=EPOCHS, image_size=64, batch_size=8, patience=EPOCHS)
    wait_for(lambda: api.get(f"/jobs/{run_id}").json()["status"] == "in_progress", 180, "the run to start")
    trainer_group = set(live_group_members(recorded(state_dir)["services"]["trainer-1"]["pid"]))
    assert len(trainer_group) >= 2  # the Celery worker and its pool process, which runs the job

    kill_and_wait_back(state_dir, "recorder")
    seen |= stack_pids(state_dir)
    kill_and_wait_back(state_dir, "trainer-1")
    seen |= stack_pids(state_dir)
    # The pool process died with its worker, as a container's processes die with it.
    wait_for(
        lambda: not any(processes.pid_alive(pid) for pid in trainer_group),
        BACK_WITHIN_S,
        "the killed worker's pool process to be gone",
    )

    done = wait_for(
        lambda: (r := api.get(f"/jobs/{run_id}").json())["status"] in ("completed", "failed") and r,
        300,
        "the run to finish on the restarted trainer",
    )
    assert done["status"] == "completed", done["error"]
    assert done["attempt"] == 2, "the job ended before the trainer was killed"  # delivered again
    epochs = api.get(f"/jobs/{run_id}/epochs").json()["data"]
    assert [e["epoch"] for e in epochs] == list(range(1, EPOCHS + 1))
    metrics = ("train_loss", "train_acc", "val_loss", "val_acc", "epoch_time_sec")
    assert all(isinstance(e[m], float | int) and math.isfinite(e[m]) for e in epochs for m in metrics)
    with pymongo.MongoClient(recorded(state_dir)["services"]["mongo"]["url"], serverSelectionTimeoutMS=5000) as client:
        stored = list(client.model_logs_db.epochs.find({"run_id": run_id}, {"_id": 0, "epoch": 1}))
    assert sorted(e["epoch"] for e in stored) == list(range(1, EPOCHS + 1))  # each exactly once

    rows = status_rows(state_dir)
    assert {name: row["RESTARTS"] for name, row in rows.items()} == {
        "redis": "0",
        "mongo": "0",
        "recorder": "1",
        "api": "0",
        "trainer-1": "1",
        "predictor-1": "0",
    }
    assert all(row["STATUS"] == "up" for row in rows.values())
    assert rows["api"]["URL"] == state["urls"]["api"]
    seen |= stack_pids(state_dir)

    down = paddy("down", "--state-dir", str(state_dir))
    assert down.returncode == 0 and "stopped supervisor" in down.stdout, down.stdout + down.stderr
    assert_all_gone(seen)
    assert not (state_dir / "stack.json").exists()


def test_status_and_restart_of_a_detached_stack(state_dir):
    paddy_up(state_dir, "redis,mongo")
    rows = status_rows(state_dir)
    assert [(name, row["STATUS"], row["RESTARTS"]) for name, row in rows.items()] == [
        ("redis", "up", "0"),
        ("mongo", "up", "0"),
    ]
    before = recorded(state_dir)["services"]["mongo"]
    assert rows["mongo"]["PID"] == str(before["pid"]) and rows["mongo"]["URL"] == before["url"]
    with pymongo.MongoClient(before["url"], serverSelectionTimeoutMS=5000) as client:
        client.paddy_test.runs.insert_one({"run_id": "r1"})
    seen = stack_pids(state_dir)

    result = paddy("restart", "mongo", "--state-dir", str(state_dir))

    after = recorded(state_dir)["services"]["mongo"]
    assert result.returncode == 0 and result.stdout == f"restarted mongo (pid {after['pid']})\n", result.stderr
    assert after["pid"] != before["pid"] and not processes.pid_alive(before["pid"])
    assert after["status"] == "up" and after["restarts"] == 1
    assert "restarting mongo (paddy restart)" in (state_dir / "logs" / "supervisor.log").read_text()
    assert "restarting mongo (paddy restart)" in (state_dir / "logs" / "mongo.log").read_text()
    with pymongo.MongoClient(after["url"], serverSelectionTimeoutMS=5000) as client:
        assert client.paddy_test.runs.find_one({"run_id": "r1"}, {"_id": 0}) == {"run_id": "r1"}
    rows = status_rows(state_dir)
    assert (rows["redis"]["RESTARTS"], rows["mongo"]["RESTARTS"]) == ("0", "1")
    assert rows["mongo"]["PID"] == str(after["pid"])

    unknown = paddy("restart", "recorder", "--state-dir", str(state_dir))
    assert unknown.returncode == 1 and "no service 'recorder'; this stack has redis, mongo" in unknown.stderr
    seen |= stack_pids(state_dir)

    assert paddy("down", "--state-dir", str(state_dir)).returncode == 0
    assert_all_gone(seen)
    stopped = paddy("status", "--state-dir", str(state_dir))
    assert stopped.returncode == 1 and "nothing is running" in stopped.stderr
    no_stack = paddy("restart", "mongo", "--state-dir", str(state_dir))
    assert no_stack.returncode == 1 and "no stack is running" in no_stack.stderr


def test_a_stale_pid_file_and_stack_json_do_not_block_up(state_dir):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    try:
        # A killed nx-27017 leaves its pid file; after a reboot that pid may be anyone's, and
        # nx-27017 refuses to start while the pid in the file is alive.
        (state_dir / "mongo").mkdir(parents=True)
        (state_dir / "mongo" / "nx-27017.pid").write_text(str(bystander.pid))
        # Left by a stack that was killed: a dead supervisor, a dead service, a reused pid.
        reused = {"pid": bystander.pid, "start_ticks": processes.start_ticks(bystander.pid) - 1}
        (state_dir / "stack.json").write_text(
            json.dumps(
                {
                    "supervisor": {"pid": finished.pid, "start_ticks": 1},
                    "ready": True,
                    "urls": {},
                    "services": {"redis": {"pid": finished.pid, "start_ticks": 1}, "mongo": reused},
                }
            )
        )

        state = paddy_up(state_dir, "redis,mongo")

        assert state["supervisor"]["pid"] != finished.pid
        with pymongo.MongoClient(state["services"]["mongo"]["url"], serverSelectionTimeoutMS=5000) as client:
            assert client.admin.command("ping")["ok"] == 1
        assert bystander.poll() is None  # nothing recorded by the dead stack was signalled
        seen = stack_pids(state_dir)
        assert paddy("down", "--state-dir", str(state_dir)).returncode == 0
        assert_all_gone(seen)
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_a_second_up_is_refused_while_a_stack_runs(state_dir):
    paddy_up(state_dir, "redis")
    again = paddy("up", "--detach", *up_options(state_dir, "redis"))
    assert again.returncode == 1 and "already running (supervisor, redis); paddy down first" in again.stderr


def test_up_names_what_kept_the_stack_from_starting(state_dir):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = paddy("up", "--detach", *up_options(state_dir, "redis,mongo", mongo=port))

    assert result.returncode == 1
    assert f"port {port} for the mongo is already in use; pass --mongo-port" in result.stderr
    assert not (state_dir / "stack.json").exists()


def test_down_stops_the_services_of_a_killed_supervisor(state_dir):
    state = paddy_up(state_dir, "redis,mongo")
    seen = stack_pids(state_dir)
    os.kill(state["supervisor"]["pid"], signal.SIGKILL)
    wait_for(lambda: not processes.pid_alive(state["supervisor"]["pid"]), 10, "the supervisor to die")

    status = paddy("status", "--state-dir", str(state_dir))
    assert status.returncode == 1 and "not running: nothing restarts crashed services" in status.stdout

    down = paddy("down", "--state-dir", str(state_dir))
    assert down.returncode == 0 and down.stdout == "stopped redis, mongo\n", down.stdout + down.stderr
    assert_all_gone(seen)
    assert not (state_dir / "stack.json").exists()


def test_up_in_the_foreground_restarts_a_crashed_service_and_ctrl_c_stops_everything(state_dir):
    up = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "up", *up_options(state_dir, "redis,mongo")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: (state_dir / "stack.json").exists() and recorded(state_dir)["ready"], 60, "the stack")
        assert recorded(state_dir)["supervisor"]["pid"] == up.pid  # one code path: the same supervisor
        kill_and_wait_back(state_dir, "mongo")
        seen = stack_pids(state_dir)

        up.send_signal(signal.SIGINT)
        out, err = up.communicate(timeout=60)
    finally:
        if up.poll() is None:
            up.kill()
            up.communicate()

    assert up.returncode == 0, err
    assert "press Ctrl-C to stop" in out
    assert "mongo exited with signal SIGKILL" in err and "stopping the stack" in err
    assert_all_gone(seen)
    assert not (state_dir / "stack.json").exists()


def test_a_crash_looping_service_waits_longer_before_each_restart(tmp_path, monkeypatch):
    marker = tmp_path / "started-once"
    # Runs on its first start; every later start exits at once.
    script = (
        f"import pathlib, sys, time\nmarker = pathlib.Path({str(marker)!r})\n"
        "if marker.exists(): sys.exit(3)\nmarker.touch()\ntime.sleep(600)\n"
    )
    crashing = local_stack._Service("flower", [sys.executable, "-c", script], 30)
    monkeypatch.setattr(LocalStack, "_build_services", lambda self: [crashing])
    stack = LocalStack(stack_config(tmp_path / "state", ("flower",)))
    supervisor = Supervisor(stack)
    thread = threading.Thread(target=supervisor.run)
    thread.start()
    try:
        wait_for(
            lambda: stack.state_dir.joinpath("stack.json").exists() and recorded(stack.state_dir)["ready"],
            30,
            "the stack",
        )
        os.kill(recorded(stack.state_dir)["services"]["flower"]["pid"], signal.SIGKILL)
        log = stack.log_dir / "flower.log"
        wait_for(lambda: "restarting it in 4 s" in log.read_text(), 60, "a fourth restart delay")
    finally:
        supervisor.request_stop()
        thread.join(60)

    text = log.read_text()
    assert re.findall(r"restarting it in (\S+) s", text) == ["0.5", "1", "2", "4"]
    assert "flower exited with signal SIGKILL" in text and "flower exited with code 3" in text
    assert not thread.is_alive() and not (stack.state_dir / "stack.json").exists()
