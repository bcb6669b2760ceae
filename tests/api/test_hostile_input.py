"""Hostile requests against a real uvicorn process: each gets its 4xx naming the field (never a
500, never a server path), and the API then answers a normal request on the same kept-alive
connection. Real redis-server and nx-27017 behind it; datasets and weights files on disk, some
of them links that lead out of their roots.
"""

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pymongo
import pytest
import torch

from shared import names
from shared.datasets.synth import synthesize_dataset
from shared.schemas.jobs import MAX_SEED
from tests.utils.api import API_KEY, png_header
from tests.utils.stack import free_port
from tests.utils.waiting import wait_for

pytestmark = pytest.mark.integration

BODY_LIMIT = 1024 * 1024  # PADDY_MAX_BODY_BYTES's default


@dataclass(frozen=True)
class Roots:
    data: Path
    weights: Path
    outside: Path


@dataclass
class Server:
    url: str
    roots: Roots
    log: Path
    process: subprocess.Popen = field(repr=False)


def arrange_files(base: Path) -> Roots:
    """A data root and a weights root, each with links that lead out, and files outside both."""
    roots = Roots(base / "data", base / "weights", base / "outside")
    synthesize_dataset(roots.outside / "dataset", per_class=3, size=32, seed=1)
    synthesize_dataset(roots.data / "leaves", per_class=3, size=32, seed=0)
    (roots.data / "escape").symlink_to(roots.outside / "dataset", target_is_directory=True)
    # "." lists every dataset as a class folder; this link to /etc comes first.
    (roots.data / "0-etc").symlink_to("/etc", target_is_directory=True)
    synthesize_dataset(roots.data / "class-link", per_class=3, size=32, seed=2)
    (roots.data / "class-link" / "Stolen").symlink_to(roots.outside / "dataset" / "Brownspot", target_is_directory=True)
    synthesize_dataset(roots.data / "image-link", per_class=3, size=32, seed=3)
    stolen = next((roots.outside / "dataset" / "Brownspot").iterdir())
    (roots.data / "image-link" / "Brownspot" / "stolen.png").symlink_to(stolen)
    synthesize_dataset(roots.data / "nested-link", per_class=3, size=32, seed=4)
    (roots.data / "nested-link" / "Leafsmut" / "more").symlink_to(roots.outside / "dataset", target_is_directory=True)
    (roots.data / "inner-alias").symlink_to(roots.data / "leaves", target_is_directory=True)

    roots.weights.mkdir()
    (roots.outside / "weights").mkdir()
    torch.save({"w": torch.zeros(1)}, roots.outside / "weights" / "model.pt")
    torch.save({"w": torch.zeros(1)}, roots.weights / "ok.pt")
    (roots.weights / "passwd.pt").symlink_to("/etc/passwd")
    (roots.weights / "elsewhere").symlink_to(roots.outside / "weights", target_is_directory=True)
    return roots


@pytest.fixture(scope="module")
def server(backing_services, tmp_path_factory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("hostile")
    roots = arrange_files(base)
    database = f"test_{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        **backing_services.env(),
        "PADDY_MONGODB_DATABASE": database,
        "PADDY_DATA_ROOT": str(roots.data),
        "PADDY_WEIGHTS_ROOT": str(roots.weights),
        "PADDY_ARTIFACTS_ROOT": str(base / "artifacts"),
        "PADDY_API_KEY": API_KEY,
        "PADDY_ENVIRONMENT": "production",
    }
    port, log = free_port(), base / "uvicorn.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "services.api.main:app", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(url), 60, "uvicorn")
        yield Server(url, roots, log, process)
    finally:
        process.terminate()
        process.wait(timeout=30)
        with pymongo.MongoClient(env["PADDY_MONGODB_URI"]) as mongo:
            mongo.drop_database(database)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/models", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def http(server) -> Iterator[httpx.Client]:
    """One client, one connection: every request of the module goes down the same socket while
    the server keeps it alive."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(base_url=server.url, headers={"X-API-Key": API_KEY}, timeout=120, limits=limits) as client:
        yield client


def local_port(response: httpx.Response) -> int:
    """The client side's port of the connection that carried response."""
    return response.extensions["network_stream"].get_extra_info("client_addr")[1]


# --- the table ---------------------------------------------------------------------------------

JOB = {"model_name": '"custom_cnn"', "dataset": '"leaves"', "epochs": "1", "image_size": "32"}


def raw_json(fields: dict[str, str]) -> bytes:
    """A JSON object from raw JSON texts, so that NaN, Infinity, 1e400 and \\u0000 go out as written."""
    return ("{" + ", ".join(f"{json.dumps(name)}: {value}" for name, value in fields.items()) + "}").encode()


def job_text(**raw: str) -> bytes:
    return raw_json({**JOB, **raw})


def text(value: Any) -> str:
    return json.dumps(value)


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    url: str
    status: int
    names: str  # what the answer must name: the field, or the body
    request: Callable[[Roots], dict[str, Any]] = lambda roots: {}
    words: str = ""  # more the message must say (the allowed range, the rule)


def post_job(id: str, names: str, words: str = "", status: int = 422, **raw: str) -> Case:
    return Case(
        id,
        "POST",
        "/jobs",
        status,
        names,
        lambda roots: {"content": job_text(**raw), "headers": {"content-type": "application/json"}},
        words,
    )


def post_job_at(id: str, names: str, words: str, raw: Callable[[Roots], dict[str, str]]) -> Case:
    """A job whose raw fields depend on where the test's files are."""
    return Case(
        id,
        "POST",
        "/jobs",
        422,
        names,
        lambda roots: {"content": job_text(**raw(roots)), "headers": {"content-type": "application/json"}},
        words,
    )


def post_json(id: str, url: str, names: str, body: bytes | Any, words: str = "", status: int = 422) -> Case:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Case(
        id,
        "POST",
        url,
        status,
        names,
        lambda roots: {"content": content, "headers": {"content-type": "application/json"}},
        words,
    )


def get(id: str, url: str, names: str, status: int = 422, words: str = "", **params: str) -> Case:
    return Case(id, "GET", url, status, names, lambda roots: {"params": params} if params else {}, words)


def sweep(base: dict | None = None, **grid) -> dict:
    return {
        "base": {"model_name": "custom_cnn", "dataset": "leaves", "epochs": 1, **(base or {})},
        "grid": grid or {"seed": [1]},
    }


def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    yield b'{"dataset": "'
    for _ in range(total // size):
        yield b"a" * size
    yield b'"}'


CASES = [
    # NUL and other control characters
    post_job("dataset-nul", "dataset", "without control characters", dataset=r'"leaves\u0000"'),
    post_job("dataset-only-nul", "dataset", dataset=r'"\u0000"'),
    post_job("dataset-newline", "dataset", dataset=r'"leaves\nforged log line"'),
    post_job("version-nul", "version", "without control characters", version=r'"v\u0000"'),
    post_job("version-escape-sequence", "version", version=r'"v1\u001b[31m"'),
    post_job("weights-nul", "weights", weights=r'"ok.pt\u0000"'),
    post_job("model-name-nul", "model_name", model_name=r'"custom_cnn\u0000"'),
    # non-finite and huge numbers
    post_job("epochs-1e400", "epochs", epochs="1e400"),
    post_job("epochs-nan", "epochs", epochs="NaN"),
    post_job("learning-rate-infinity", "learning_rate", "finite", learning_rate="Infinity"),
    post_job("learning-rate-minus-infinity", "learning_rate", learning_rate="-Infinity"),
    post_job("weight-decay-nan", "weight_decay", weight_decay="NaN"),
    post_job("dropout-1e400", "dropout", dropout="1e400"),
    post_job("seed-10-to-the-30", "seed", f"≤ {MAX_SEED}", seed=str(10**30)),
    post_job("seed-minus-1", "seed", "≥ 0", seed="-1"),
    post_job("epochs-minus-1", "epochs", "≥ 1 and ≤ 1000", epochs="-1"),
    post_job("batch-size-10-to-the-30", "batch_size", "≤ 4096", batch_size=str(10**30)),
    post_job("patience-a-million", "patience", "≤ 1000", patience="1000000"),
    post_job("trainable-layers-minus-2-to-the-63", "trainable_layers", "≥ 0", trainable_layers=str(-(2**63))),
    post_job("image-size-huge-float", "image_size", image_size="1e300"),
    post_job("image-size-one-side", "image_size", image_size="[96]"),
    post_job("image-size-three-sides", "image_size", image_size="[96, 320, 3]"),
    post_job("image-size-side-as-text", "image_size", image_size='["96", 320]'),
    post_job("image-size-side-too-big", "image_size", image_size="[96, 100000]"),
    post_job("image-size-nested", "image_size", image_size="[[96], 320]"),
    post_job("resize-unknown", "resize", "squash", resize='"stretch"'),
    post_job("cnn-blocks-40", "cnn_blocks", "≤ 5", cnn_blocks="40"),
    post_job("epochs-5000-digits", "body", status=400, epochs="9" * 5000),
    # wrong JSON types
    post_job("epochs-true", "epochs", "a whole number", epochs="true"),
    post_job("epochs-string", "epochs", epochs='"3"'),
    post_job("epochs-list", "epochs", epochs="[3]"),
    post_job("epochs-operator", "epochs", epochs='{"$gt": 0}'),
    post_job("learning-rate-false", "learning_rate", learning_rate="false"),
    post_job("dropout-string", "dropout", dropout='"0.5"'),
    post_job("feature-extraction-1", "feature_extraction", feature_extraction="1"),
    post_job("feature-extraction-yes", "feature_extraction", feature_extraction='"yes"'),
    post_job("dataset-operator", "dataset", dataset='{"$gt": ""}'),
    post_job("dataset-number", "dataset", dataset="5"),
    post_job("dataset-list", "dataset", dataset='["leaves"]'),
    post_job("model-name-operator", "model_name", model_name='{"$ne": null}'),
    post_job("version-number", "version", version="3"),
    post_job("weights-operator", "weights", weights='{"$regex": ".*"}'),
    post_json("body-a-list", "/jobs", "body", [JOB]),
    post_json("body-a-string", "/jobs", "body", "custom_cnn"),
    post_json("body-nested-100000-deep", "/jobs", "body", b"[" * 100_000 + b"]" * 100_000, status=400),
    # huge strings and bodies
    post_job("version-a-megabyte", "version", "at most 64 characters", version=text("v" * 1_000_000)),
    post_job("dataset-5000-characters", "dataset", "at most 1024 characters", dataset=text("a" * 5000)),
    post_job("model-name-5000-characters", "model_name", model_name=text("m" * 5000)),
    Case(
        "body-50-megabytes",
        "POST",
        "/jobs",
        413,
        "body",
        lambda roots: {
            "content": b'{"dataset": "' + b"a" * 50_000_000 + b'"}',
            "headers": {"content-type": "application/json"},
        },
        "PADDY_MAX_BODY_BYTES",
    ),
    Case(
        "body-2-megabytes-chunked",
        "POST",
        "/jobs",
        413,
        "body",
        lambda roots: {"content": chunks(2 * BODY_LIMIT), "headers": {"content-type": "application/json"}},
        "PADDY_MAX_BODY_BYTES",
    ),
    Case(
        "sweep-body-2-megabytes",
        "POST",
        "/sweeps",
        413,
        "body",
        lambda roots: {"json": sweep(seed=list(range(300_000)))},
        "PADDY_MAX_BODY_BYTES",
    ),
    # datasets that lead out of the data root
    post_job("dataset-dot-dot", "dataset", "'..'", dataset='"../outside/dataset"'),
    post_job("dataset-dot-dot-deeper", "dataset", "'..'", dataset='"leaves/../../outside/dataset"'),
    post_job("dataset-etc", "dataset", "outside the data root", dataset='"/etc"'),
    post_job("dataset-absolute-missing", "dataset", "outside the data root", dataset='"/no/such/dir"'),
    post_job_at(
        "dataset-absolute-outside",
        "dataset",
        "outside the data root",
        lambda roots: {"dataset": text(str(roots.outside / "dataset"))},
    ),
    post_job("dataset-symlink-out", "dataset", "outside the data root", dataset='"escape"'),
    post_job("dataset-symlink-out-then-down", "dataset", "outside the data root", dataset='"escape/Brownspot"'),
    post_job("dataset-class-folder-symlink", "dataset", "'class-link/Stolen' is a link", dataset='"class-link"'),
    post_job("dataset-image-symlink", "dataset", "stolen.png' is a link", dataset='"image-link"'),
    post_job(
        "dataset-nested-folder-symlink", "dataset", "'nested-link/Leafsmut/more' is a link", dataset='"nested-link"'
    ),
    post_job("dataset-dot-with-a-link-to-etc", "dataset", "'0-etc' is a link", dataset='"."'),
    post_job("dataset-missing", "dataset", "not found in the data root", dataset='"no-such-dataset"'),
    # weights that lead out of the weights root
    post_job("weights-etc-passwd", "weights", "outside the weights root", weights='"/etc/passwd"'),
    post_job("weights-absolute-missing", "weights", "outside the weights root", weights='"/etc/no-such-file"'),
    post_job("weights-dot-dot", "weights", "'..'", weights='"../x"'),
    post_job("weights-symlink-out", "weights", "outside the weights root", weights='"passwd.pt"'),
    post_job("weights-folder-symlink-out", "weights", "outside the weights root", weights='"elsewhere/model.pt"'),
    post_job("weights-missing", "weights", "not found in the weights root", weights='"missing.pt"'),
    post_job("weights-a-folder", "weights", "not a file", weights='"."'),
    # sweeps: base and grid are validated as JobSpecs, never stored as they came
    post_json("sweep-base-operator", "/sweeps", "epochs", sweep({"epochs": {"$gt": 0}})),
    post_json("sweep-grid-nested-list", "/sweeps", "seed", sweep(seed=[[1, 2]])),
    post_json("sweep-grid-operator", "/sweeps", "seed", sweep(seed=[{"$gt": 0}])),
    post_json(
        "sweep-grid-infinity",
        "/sweeps",
        "learning_rate",
        raw_json({"base": text(sweep()["base"]), "grid": '{"learning_rate": [Infinity]}'}),
    ),
    post_json("sweep-grid-seed-10-to-the-30", "/sweeps", "seed", sweep(seed=[10**30]), f"≤ {MAX_SEED}"),
    post_json("sweep-grid-too-many-values", "/sweeps", "seed", sweep(seed=list(range(5000)))),
    post_json(
        "sweep-grid-too-many-combinations",
        "/sweeps",
        "grid",
        sweep(seed=list(range(100)), epochs=list(range(1, 101))),
        "10000 combinations",
    ),
    post_json(
        "sweep-base-seed-10-to-the-30-under-the-grid",
        "/sweeps",
        "seed",
        sweep({"seed": 10**30}, seed=[1]),
        f"≤ {MAX_SEED}",
    ),
    post_json("sweep-base-operator-key", "/sweeps", "$where", sweep({"$where": "1"})),
    post_json("sweep-base-dataset-dot-dot", "/sweeps", "dataset", sweep({"dataset": "../outside"}), "'..'"),
    post_json("sweep-grid-weights-etc-passwd", "/sweeps", "weights", sweep(weights=["/etc/passwd"]), "outside"),
    post_json(
        "sweep-base-dataset-nul",
        "/sweeps",
        "dataset",
        raw_json({"base": r'{"model_name": "custom_cnn", "dataset": "a\u0000"}', "grid": '{"seed": [1]}'}),
    ),
    # ensembles
    post_json("ensemble-member-nul", "/ensembles", "members", raw_json({"members": r'["a\u0000", "b"]'})),
    post_json("ensemble-member-operator", "/ensembles", "members", {"members": [{"$gt": ""}, "b"]}),
    post_json("ensemble-member-too-long", "/ensembles", "members", {"members": ["a" * 100, "b"]}),
    post_json("ensemble-a-thousand-members", "/ensembles", "members", {"members": [f"r{i}" for i in range(1000)]}),
    post_json("ensemble-batch-size-true", "/ensembles", "batch_size", {"members": ["a", "b"], "batch_size": True}),
    post_json(
        "ensemble-version-nul", "/ensembles", "version", raw_json({"members": '["a", "b"]', "version": r'"\u0000"'})
    ),
    # the model registry: strict bodies, a reason of one line of text
    post_json(
        "promote-reason-nul",
        "/registry/promote",
        "reason",
        raw_json({"run_id": '"a"', "alias": '"production"', "reason": r'"ok\u0000"'}),
        "without control characters",
    ),
    post_json(
        "promote-reason-newline",
        "/registry/promote",
        "reason",
        {"run_id": "a", "alias": "production", "reason": "a\nforged log line"},
    ),
    post_json(
        "promote-reason-a-megabyte",
        "/registry/promote",
        "reason",
        {"run_id": "a", "alias": "production", "reason": "r" * 1_000_000},
        "at most 500 characters",
    ),
    post_json(
        "promote-reason-501-characters",
        "/registry/promote",
        "reason",
        {"run_id": "a", "alias": "production", "reason": "r" * 501},
        "at most 500 characters",
    ),
    post_json(
        "promote-reason-blank", "/registry/promote", "reason", {"run_id": "a", "alias": "production", "reason": "  "}
    ),
    post_json(
        "promote-reason-operator",
        "/registry/promote",
        "reason",
        {"run_id": "a", "alias": "production", "reason": {"$ne": ""}},
    ),
    post_json(
        "promote-run-id-operator",
        "/registry/promote",
        "run_id",
        {"run_id": {"$gt": ""}, "alias": "production", "reason": "r"},
    ),
    post_json(
        "promote-run-id-dot-dot",
        "/registry/promote",
        "run_id",
        {"run_id": "../etc", "alias": "production", "reason": "r"},
    ),
    post_json(
        "promote-alias-unknown",
        "/registry/promote",
        "alias",
        {"run_id": "a", "alias": "staging", "reason": "r"},
        "'candidate' or 'production'",
    ),
    post_json(
        "promote-unknown-run",
        "/registry/promote",
        "run nope not found",
        {"run_id": "nope", "alias": "production", "reason": "r"},
        status=404,
    ),
    post_json(
        "demote-dataset-nul",
        "/registry/demote",
        "dataset",
        raw_json({"dataset": r'"a\u0000"', "alias": '"production"', "reason": '"r"'}),
    ),
    post_json(
        "demote-dataset-operator",
        "/registry/demote",
        "dataset",
        {"dataset": {"$ne": ""}, "alias": "production", "reason": "r"},
    ),
    post_json(
        "demote-empty-alias",
        "/registry/demote",
        "nothing to demote",
        {"dataset": "leaves", "alias": "candidate", "reason": "r"},
        status=409,
    ),
    get("registry-dataset-nul", "/registry", "dataset", dataset="a\x00"),
    get("registry-history-run-id-operator", "/registry/history", "run_id", run_id='{"$ne": null}'),
    get("registry-history-limit-10-to-the-30", "/registry/history", "limit", limit=str(10**30)),
    get("card-run-id-nul", "/jobs/%00/card", "run_id"),
    get("card-markdown-run-id-dot-dot", "/jobs/..%2F..%2Fetc/card.md", "Not Found", status=404),
    get("card-unknown-run", "/jobs/nope/card", "run nope", status=404),
    # ONNX exports: a strict body, the one format there is
    post_json("export-run-id-nul", "/jobs/%00/export", "run_id", {}),
    post_json("export-quantize-text", "/jobs/a/export", "quantize", {"quantize": "yes"}),
    post_json("export-format-unknown", "/jobs/a/export", "format", {"format": "tflite"}),
    post_json("export-unknown-field", "/jobs/a/export", "opset", {"opset": 7}),
    get("export-status-run-id-dot-dot", "/jobs/..%2F..%2Fetc/export/status", "Not Found", status=404),
    get("export-download-format-unknown", "/jobs/a/export", "format", format="tflite"),
    get("export-download-int8-text", "/jobs/a/export", "int8", int8="maybe"),
    get("export-download-run-id-nul", "/jobs/%00/export", "run_id"),
    # path and query parameters
    get("run-id-nul", "/jobs/%00", "run_id", words="letters, digits"),
    get("run-id-10000-characters", "/jobs/" + "a" * 10_000, "run_id"),
    get("run-id-newline-epochs", "/jobs/a%0Ab/epochs", "run_id"),
    Case("cancel-run-id-nul", "POST", "/jobs/%00/cancel", 422, "run_id"),
    Case("retry-run-id-operator", "POST", "/jobs/%7B%22$gt%22:%22%22%7D/retry", 422, "run_id"),
    Case("archive-run-id-nul", "DELETE", "/jobs/a%00", 422, "run_id"),
    get("checkpoint-run-id-dot-dot", "/jobs/..%2F..%2Fetc/checkpoint", "Not Found", status=404),
    get("checkpoint-run-id-nul", "/jobs/%00/checkpoint", "run_id"),
    get("predictions-run-id-nul", "/jobs/%00/predictions", "run_id"),
    get("predictions-true-class-nul", "/jobs/a/predictions", "true_class", true_class="\x00"),
    get("predictions-predicted-class-too-long", "/jobs/a/predictions", "predicted_class", predicted_class="a" * 10_000),
    get("predictions-correct-maybe", "/jobs/a/predictions", "correct", correct="maybe"),
    get("predictions-sort-by-size", "/jobs/a/predictions", "sort", sort="size"),
    get("predictions-limit-10-to-the-30", "/jobs/a/predictions", "limit", limit=str(10**30)),
    get("run-against-run-id-nul", "/compare/a%00/b/images", "run_a"),
    get("run-against-run-dot-dot", "/compare/..%2F..%2Fetc/b/images", "Not Found", status=404),
    get("studies-id-nul", "/compare/studies", "study_ids", study_ids="a\x00,b"),
    get("studies-ids-too-long", "/compare/studies", "study_ids", study_ids=",".join(["a" * 64] * 100)),
    get("studies-metric-test-loss", "/compare/studies", "metric", study_ids="a,b", metric="test_loss"),
    get("sweep-id-nul", "/sweeps/%00", "sweep_id"),
    get("unknown-run", "/jobs/nope", "run nope", status=404),
    get("limit-10-to-the-30", "/jobs", "limit", limit=str(10**30)),
    get("offset-minus-1", "/jobs", "offset", offset="-1"),
    get("min-val-accuracy-nan", "/jobs", "min_val_accuracy", min_val_accuracy="nan"),
    get("min-test-accuracy-infinity", "/jobs", "min_test_accuracy", min_test_accuracy="inf"),
    get("version-query-nul", "/jobs", "version", version="\x00"),
    get("model-name-query-5000-characters", "/jobs", "model_name", model_name="m" * 5000),
    get("sweep-id-query-operator", "/jobs", "sweep_id", sweep_id='{"$ne": null}'),
    get("started-after-year-0", "/jobs", "started_after", started_after="0001-01-01T00:00:00+01:00"),
    get("started-before-past-9999", "/jobs", "started_before", started_before="9999-12-31T23:00:00-14:00"),
    get("compare-run-id-nul", "/compare", "run_ids", run_ids="a\x00,b"),
    get("compare-run-ids-too-long", "/compare", "run_ids", run_ids=",".join(["a" * 64] * 100)),
    # datasets: one folder directly under the data root, images inside it
    get("dataset-name-nul", "/datasets/%00", "name", words="without control characters"),
    get("dataset-name-dot", "/datasets/%2E", "must name one folder"),
    get("dataset-name-dot-dot", "/datasets/%2E%2E", "must name one folder"),
    get("dataset-name-dot-dot-slashes", "/datasets/..%2F..%2Fetc", "Not Found", status=404),
    get("dataset-name-300-characters", "/datasets/" + "a" * 300, "name"),
    get("dataset-name-symlink-out", "/datasets/escape", "outside the data root"),
    get("dataset-name-link-to-etc", "/datasets/0-etc", "outside the data root"),
    get("dataset-class-folder-symlink-out", "/datasets/class-link", "'class-link/Stolen' is a link"),
    get("dataset-image-symlink-out", "/datasets/image-link", "stolen.png' is a link"),
    get("dataset-name-missing", "/datasets/no-such-dataset", "not found in the data root", status=404),
    Case("audit-dataset-nul", "POST", "/datasets/a%00/audit", 422, "name"),
    Case("audit-dataset-symlink-out", "POST", "/datasets/escape/audit", 422, "outside the data root"),
    Case("audit-dataset-nested-link-out", "POST", "/datasets/nested-link/audit", 422, "'nested-link/Leafsmut/more'"),
    Case("audit-dataset-missing", "POST", "/datasets/no-such-dataset/audit", 404, "not found in the data root"),
    get("image-dot-dot", "/datasets/leaves/images/..%2F..%2Foutside%2Fdataset%2FBrownspot%2F0000.png", "'..'"),
    get("image-absolute", "/datasets/leaves/images/%2Fetc%2Fpasswd", "outside dataset 'leaves'"),
    get("image-nul", "/datasets/leaves/images/Brownspot%2F0000.png%00", "without control characters"),
    get("image-symlink-out", "/datasets/image-link/images/Brownspot/stolen.png", "outside dataset 'image-link'"),
    get("image-folder-symlink-out", "/datasets/nested-link/images/Leafsmut/more/Brownspot/0000.png", "outside"),
    get("image-of-a-dataset-outside", "/datasets/escape/images/Brownspot/0000.png", "outside the data root"),
    get("image-of-a-link-to-etc", "/datasets/0-etc/images/passwd", "outside the data root"),
    get("image-missing", "/datasets/leaves/images/Brownspot/none.png", "not found in dataset 'leaves'", status=404),
    get("image-size-10-to-the-30", "/datasets/leaves/images/Brownspot/0000.png", "size", size=str(10**30)),
    Case(
        "predict-run-id-nul",
        "POST",
        "/predict",
        422,
        "run_id",
        lambda roots: {"data": {"run_id": "a\x00b"}, "files": {"file": ("leaf.png", png_header(8, 8), "image/png")}},
    ),
]


def server_paths(roots: Roots) -> list[str]:
    return [str(path) for root in (roots.data, roots.weights, roots.outside) for path in (root, root.resolve())]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_hostile_request_is_refused_and_the_connection_serves_on(server, http, case):
    request = case.request(server.roots)
    response = http.request(case.method, case.url, **request)
    assert response.status_code == case.status, response.text[:1000]
    told = json.dumps(response.json()["detail"], ensure_ascii=False)
    assert case.names in told and case.words in told, told[:1000]
    sent = request["content"].decode(errors="replace") if isinstance(request.get("content"), bytes) else ""
    # A server path appears only where the client wrote it.
    assert not [path for path in server_paths(server.roots) if path in told and path not in sent], told[:1000]
    assert response.headers.get("connection", "").lower() != "close"
    after = http.get("/models")
    assert after.status_code == 200 and after.json()["count"] == 4
    assert local_port(after) == local_port(response)  # the same kept-alive connection


def test_there_are_at_least_40_cases():
    assert len(CASES) >= 40


@pytest.mark.parametrize(
    "body",
    [
        {"dataset": "leaves"},
        {"dataset": "inner-alias"},
        {"dataset": "leaves", "weights": "ok.pt"},
        {"dataset": "leaves", "version": "v 1 ✓", "seed": MAX_SEED, "epochs": 1000, "learning_rate": 1},
    ],
)
def test_what_stays_inside_the_limits_and_the_roots_is_queued(server, http, body):
    response = http.post("/jobs", json={"model_name": "custom_cnn", **body})
    assert response.status_code == 202, response.text


def test_only_the_datasets_inside_the_data_root_are_listed(server, http):
    listing = http.get("/datasets").json()
    # inner-alias links to leaves, inside the data root; every other folder leads out somewhere.
    assert [dataset["name"] for dataset in listing["data"]] == ["inner-alias", "leaves"]


def test_a_nul_in_the_raw_request_line_is_a_400_and_the_server_answers_on(server):
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as raw:
        raw.sendall(b"GET /jobs/a\x00b HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = raw.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400")
    assert httpx.get(f"{server.url}/models").status_code == 200


def test_the_limits_are_in_the_openapi_schema(server, http):
    schema = http.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    job = components["JobSpec"]["properties"]
    assert job["epochs"]["maximum"] == 1000 and job["seed"]["maximum"] == MAX_SEED
    assert job["patience"]["anyOf"][0]["maximum"] == 1000 and job["learning_rate"]["exclusiveMinimum"] == 0
    side, height_width = job["image_size"]["anyOf"][:2]
    assert (side["minimum"], side["maximum"]) == (32, 1024)
    assert (height_width["minItems"], height_width["maxItems"], height_width["items"]["maximum"]) == (2, 2, 1024)
    assert job["dataset"]["maxLength"] == 1024 and job["dataset"]["pattern"].startswith("^[^\\x00")
    assert job["weights"]["anyOf"][0]["maxLength"] == 1024
    assert job["version"]["anyOf"][0]["maxLength"] == 64
    members = components["EnsembleSpec"]["properties"]["members"]
    assert members["maxItems"] == 20 and "pattern" in members["items"]
    [values] = components["SweepCreate"]["properties"]["grid"]["patternProperties"].values()
    assert values["maxItems"] == 1000 and values["items"]["anyOf"]
    run_id = next(p for p in schema["paths"]["/jobs/{run_id}"]["get"]["parameters"] if p["name"] == "run_id")
    assert run_id["schema"]["pattern"] == "^[A-Za-z0-9_-]{1,64}$"
    assert "413" in schema["paths"]["/jobs"]["post"]["responses"]


def test_the_server_logged_no_unexpected_error(server, http):
    """Run last: every case above was answered without an exception in the server."""
    assert http.get("/models").status_code == 200
    log = server.log.read_text()
    assert "Traceback" not in log and "internal error" not in log and " 500 " not in log, log[-3000:]


@pytest.mark.parametrize(
    ("stored", "field"),
    [
        ({"seed": 10**12}, "seed"),
        ({"dataset": "../outside"}, "dataset"),
        ({"weights": "/etc/passwd"}, "weights"),
    ],
)
def test_retrying_a_run_whose_stored_spec_breaks_todays_limits_is_422(client, db, stored, field):
    from tests.utils.documents import stored_run

    run = stored_run(db, "old", status="failed")
    db[names.STATUS].update_one({"run_id": "old"}, {"$set": {f"spec.{name}": value for name, value in stored.items()}})
    assert run["spec"]["dataset"] == "leaves"
    response = client.post("/jobs/old/retry")
    assert response.status_code == 422 and field in json.dumps(response.json()["detail"])
    assert client.get("/jobs").json()["count"] == 1  # nothing queued
