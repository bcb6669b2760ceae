"""The local stack (infra/local_stack.py) on free ports, as integration tests and benchmarks start it."""

import os
import signal
import socket
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from infra.local_stack import LocalStack, StackConfig

# What a job goes through, dashboard and Flower aside.
TRAINING_STACK = ("redis", "mongo", "recorder", "api", "trainer")


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """count different free ports: each socket stays bound until all are chosen, or the system
    may hand one port out twice (a stack with its Redis and API on one port fails to start)."""
    with ExitStack() as held:
        sockets = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def stack_config(
    state_dir: Path,
    services: tuple[str, ...],
    trainers: int = 1,
    env: Mapping[str, str] | None = None,
    predictors: bool = True,
) -> StackConfig:
    """These services, every port a free one, `env` added to each service's environment;
    predictors=False: trainers without their predictors (for stacks that never predict)."""
    redis_port, mongo_port, api_port, dashboard_port, flower_port = free_ports(5)
    return StackConfig(
        state_dir=state_dir,
        services=services,
        trainers=trainers,
        predictors=predictors,
        redis_port=redis_port,
        mongo_port=mongo_port,
        api_port=api_port,
        dashboard_port=dashboard_port,
        flower_port=flower_port,
        extra_env=dict(env or {}),
    )


@contextmanager
def running_stack(
    state_dir: Path,
    services: tuple[str, ...],
    trainers: int = 1,
    env: Mapping[str, str] | None = None,
    predictors: bool = True,
) -> Iterator[LocalStack]:
    """The stack of stack_config(...), started; stopped with everything it started on exit."""
    with LocalStack(stack_config(state_dir, services, trainers, env, predictors)) as stack:
        yield stack


def kill_service(stack: LocalStack, name: str) -> None:
    """SIGKILL a service and the children in its process group, as an OOM kill or a crash would."""
    process = stack.process(name)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def api_client(stack: LocalStack, timeout_s: float = 10, api_key: str | None = None) -> httpx.Client:
    """A client of the stack's API that sends its key (the stack's own unless given)."""
    return httpx.Client(
        base_url=stack.urls()["api"], timeout=timeout_s, headers={"X-API-Key": api_key or stack.api_key}
    )


def queue_job(api: httpx.Client, **spec) -> str:
    """POST /jobs of custom_cnn on the `leaves` dataset, `spec` adding or overriding fields; the run id."""
    response = api.post("/jobs", json={"model_name": "custom_cnn", "dataset": "leaves", **spec})
    assert response.status_code == 202, response.text
    return response.json()["run_id"]
