"""The local stack starts real redis-server, nx-27017 and Flower processes on free ports."""

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pymongo
import pytest
import redis

from infra import local_stack, processes
from infra.local_stack import LocalStack, StackError, stop_recorded_stack
from tests.utils.processes import live_group_members
from tests.utils.stack import stack_config

pytestmark = pytest.mark.integration


def group_gone(pid: int) -> bool:
    """No process is left in the group a service was started in (its leader and children)."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., LocalStack]]:
    """Builds stacks on free ports in tmp_path; stops every one of them, even after a failure."""
    stacks: list[LocalStack] = []

    def make(*services: str, **overrides) -> LocalStack:
        config = stack_config(overrides.pop("state_dir", tmp_path / "state"), services)
        for name, value in overrides.items():
            setattr(config, name, value)
        stack = LocalStack(config)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.stop()


def test_starts_backing_services_and_flower_then_stops_them_all(make_stack):
    stack = make_stack("redis", "mongo", "flower")
    stack.start()
    config = stack.config

    assert redis.Redis(port=config.redis_port).ping()
    with pymongo.MongoClient(port=config.mongo_port, serverSelectionTimeoutMS=2000) as client:
        assert client.admin.command("ping")["ok"] == 1
    with urllib.request.urlopen(stack.urls()["flower"], timeout=5) as response:
        assert response.status == 200
    state = json.loads((config.state_dir / "stack.json").read_text())
    pids = {name: stack.process(name).pid for name in ("redis", "mongo", "flower")}
    assert {name: entry["pid"] for name, entry in state["services"].items()} == pids
    assert state["urls"] == {"flower": f"http://127.0.0.1:{config.flower_port}"}

    stack.stop()

    assert all(group_gone(pid) for pid in pids.values())
    assert not (config.state_dir / "stack.json").exists()
    stack.stop()  # idempotent


def test_env_points_every_service_at_this_stack(make_stack, tmp_path):
    stack = make_stack("redis", "mongo", extra_env={"PADDY_HEARTBEAT_TIMEOUT_S": "5"})
    env = stack.env()
    config = stack.config

    assert env["PADDY_REDIS_URL"] == f"redis://127.0.0.1:{config.redis_port}/0"
    assert env["PADDY_MONGODB_URI"] == f"mongodb://127.0.0.1:{config.mongo_port}"
    assert env["PADDY_DATA_ROOT"] == str(tmp_path / "state" / "data")
    assert env["PADDY_ARTIFACTS_ROOT"] == str(tmp_path / "state" / "artifacts")
    assert env["PADDY_API_URL"] == f"http://127.0.0.1:{config.api_port}"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PADDY_HEARTBEAT_TIMEOUT_S"] == "5"


def test_a_busy_port_names_the_service_and_starts_nothing(make_stack):
    stack = make_stack("redis", "mongo")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", stack.config.mongo_port))
        squatter.listen()
        with pytest.raises(StackError, match=f"port {stack.config.mongo_port} for the mongo is already in use"):
            stack.start()

    assert local_stack._port_is_free("127.0.0.1", stack.config.redis_port)  # redis never started
    assert not (stack.config.state_dir / "logs").exists()


def test_a_second_stack_on_the_same_state_dir_is_refused(make_stack):
    make_stack("redis").start()
    second = make_stack("redis")

    with pytest.raises(StackError, match="already running.*paddy down first"):
        second.start()


@pytest.mark.parametrize(
    ("failing", "expected"),
    [
        (
            local_stack._Service("flower", [sys.executable, "-c", "print('boom'); raise SystemExit(3)"], 30),
            r"flower exited with code 3 while starting(.|\n)*boom",
        ),
        (
            local_stack._Service(
                "flower", [sys.executable, "-c", "print('hung'); import time; time.sleep(60)"], 1, lambda: False
            ),
            r"flower was not ready within 1 s(.|\n)*hung",
        ),
    ],
)
def test_a_service_that_fails_to_start_stops_the_others(make_stack, monkeypatch, failing, expected):
    stack = make_stack("redis", "flower")
    real_build = LocalStack._build_services
    monkeypatch.setattr(
        LocalStack, "_build_services", lambda self: [s for s in real_build(self) if s.name != "flower"] + [failing]
    )

    with pytest.raises(StackError, match=expected):
        stack.start()

    assert local_stack._port_is_free("127.0.0.1", stack.config.redis_port)
    assert not (stack.config.state_dir / "stack.json").exists()


def test_stop_recorded_stack_stops_a_detached_stack(make_stack):
    stack = make_stack("redis", "mongo", "flower")
    stack.start()
    processes = {name: stack.process(name) for name in ("redis", "mongo", "flower")}

    stopped = stop_recorded_stack(stack.config.state_dir)

    assert sorted(stopped) == ["flower", "mongo", "redis"]
    for process in processes.values():
        process.wait(timeout=5)  # they are this test's children: reap them
        assert group_gone(process.pid)
    assert not (stack.config.state_dir / "stack.json").exists()
    assert stop_recorded_stack(stack.config.state_dir) == []


def test_stop_recorded_stack_leaves_a_reused_pid_alone(tmp_path):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        entry = {
            "pid": bystander.pid,
            "cmdline": ["redis-server"],
            "log": "x",
            "start_ticks": processes.start_ticks(bystander.pid) - 1,
        }
        (tmp_path / "stack.json").write_text(json.dumps({"services": {"redis": entry}, "urls": {}}))

        assert stop_recorded_stack(tmp_path) == []
        assert bystander.poll() is None
        assert not (tmp_path / "stack.json").exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_restarted_mongo_keeps_its_data(make_stack):
    stack = make_stack("mongo")
    stack.start()
    uri = stack.env()["PADDY_MONGODB_URI"]
    with pymongo.MongoClient(uri, serverSelectionTimeoutMS=2000) as client:
        client.paddy_test.runs.insert_one({"run_id": "r1", "status": "queued"})
    first_pid = stack.process("mongo").pid

    stack.restart("mongo")

    assert stack.process("mongo").pid != first_pid
    with pymongo.MongoClient(uri, serverSelectionTimeoutMS=2000) as client:
        assert client.paddy_test.runs.find_one({"run_id": "r1"}, {"_id": 0}) == {"run_id": "r1", "status": "queued"}


def test_restarted_redis_keeps_queued_messages(make_stack):
    stack = make_stack("redis")
    stack.start()
    client = redis.Redis.from_url(stack.env()["PADDY_REDIS_URL"])
    client.lpush("training", "job-1")

    stack.process("redis").kill()  # a crash, not a clean shutdown: the AOF must have it
    stack.restart("redis")

    assert client.lrange("training", 0, -1) == [b"job-1"]
    client.close()


def test_restart_records_the_new_process_in_stack_json(make_stack):
    stack = make_stack("redis")
    stack.start()
    before = json.loads((stack.config.state_dir / "stack.json").read_text())["services"]["redis"]
    assert (before["status"], before["restarts"], before["url"]) == (
        "up",
        0,
        f"redis://127.0.0.1:{stack.config.redis_port}/0",
    )

    stack.restart("redis")

    after = json.loads((stack.config.state_dir / "stack.json").read_text())["services"]["redis"]
    assert after["pid"] == stack.process("redis").pid != before["pid"]
    assert (after["status"], after["restarts"]) == ("up", 1)
    assert after["started_at"] > before["started_at"]


def test_stop_recorded_stack_kills_what_is_left_of_a_group_whose_leader_died(make_stack, monkeypatch):
    # Like a Celery worker killed with SIGKILL: its pool process lives on in its process group.
    parent = local_stack._Service(
        "flower",
        [
            sys.executable,
            "-c",
            (
                "import subprocess, sys, time\n"
                "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
                "time.sleep(300)\n"
            ),
        ],
        30,
    )
    monkeypatch.setattr(LocalStack, "_build_services", lambda self: [parent])
    stack = make_stack("flower")
    stack.start()
    leader = stack.process("flower")
    os.kill(leader.pid, signal.SIGKILL)
    leader.wait()
    assert len(live_group_members(leader.pid)) == 1  # the child is still there

    assert stop_recorded_stack(stack.config.state_dir) == []  # nothing recorded was running...

    assert live_group_members(leader.pid) == []  # ...but its group is gone
    assert not (stack.config.state_dir / "stack.json").exists()
