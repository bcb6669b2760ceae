"""Prediction without torch: `paddy predict --onnx MODEL IMAGE|DIR` imports neither torch nor
Celery nor FastAPI, and the `edge` extra alone, in a fresh virtualenv, is enough to run it."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.cli import app
from services.trainer.local_run import train_locally
from services.trainer.onnx_export import export_run
from services.trainer.settings import TrainerSettings
from shared import names
from shared.datasets.synth import synthesize_dataset
from shared.onnx_model import OnnxClassifier
from shared.schemas.jobs import JobSpec

REPO = Path(__file__).resolve().parents[1]
# What the edge install must never need (nor load, when it is all installed).
HEAVY_MODULES = ("torch", "torchvision", "celery", "fastapi")
# The source an install of the project reads: copied, so that building it leaves the work tree alone.
PROJECT_FILES = ("pyproject.toml", "README.md", "shared", "services", "infra")


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """The ONNX export of a tiny custom_cnn run (32 px, one epoch)."""
    data_root, artifacts_root = tmp_path_factory.mktemp("data"), tmp_path_factory.mktemp("artifacts")
    synthesize_dataset(data_root / "tiny", per_class=6, size=48, seed=3)
    settings = TrainerSettings(data_root=data_root, artifacts_root=artifacts_root, device="cpu", heatmaps_per_run=0)
    spec = JobSpec(model_name="custom_cnn", dataset="tiny", epochs=1, batch_size=8, image_size=32, split="random")
    train_locally("edge", spec, settings)
    assert export_run("edge", settings).status == "completed"
    return artifacts_root / names.RUNS_DIR / "edge" / names.EXPORT_DIR / names.EXPORT_MODEL


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Photos in class folders, one unreadable image and a hidden file (left out)."""
    root = tmp_path_factory.mktemp("photos")
    synthesize_dataset(root, per_class=2, size=64, seed=11)
    (root / "Brownspot" / "broken.png").write_text("not a png")
    (root / ".hidden.png").write_bytes((root / "Leafsmut" / "0000.png").read_bytes())
    return root


def expected_answers(model: Path, folder: Path) -> dict[str, tuple[str, dict[str, float]]]:
    classifier = OnnxClassifier.load(model, threads=2)
    photos = sorted(path for path in folder.rglob("*.png") if path.name not in ("broken.png", ".hidden.png"))
    return {
        path.relative_to(folder).as_posix(): answer
        for path, answer in zip(photos, classifier.predict(photos), strict=True)
    }


def check_json_answers(stdout: str, model: Path, folder: Path) -> None:
    answers = {entry["image"]: entry for entry in json.loads(stdout)}
    assert answers.pop("Brownspot/broken.png")["error"].startswith("cannot read image Brownspot/broken.png")
    expected = expected_answers(model, folder)
    assert set(answers) == set(expected)
    for image, (class_name, probabilities) in expected.items():
        assert answers[image]["class"] == class_name
        assert answers[image]["probabilities"] == pytest.approx(probabilities, abs=1e-6)


def test_predict_onnx_classifies_a_folder_without_importing_torch_celery_or_fastapi(model, folder):
    script = (
        "import json, sys\n"
        "from infra.cli import app\n"
        f"app(['predict', '--onnx', {str(model)!r}, {str(folder)!r}, '--json'], standalone_mode=False)\n"
        f"sys.stderr.write('LOADED ' + json.dumps(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stderr
    assert "7 images, 1 unreadable" in done.stderr  # and the progress bar went to stderr, not into the JSON
    check_json_answers(done.stdout, model, folder)


def test_predict_onnx_writes_a_batch_s_csv_and_prints_a_table(model, folder, tmp_path):
    runner = CliRunner()
    out = tmp_path / "predictions.csv"
    done = runner.invoke(app, ["predict", "--onnx", str(model), str(folder), "--out", str(out)])
    assert done.exit_code == 0, done.output
    rows = list(csv.reader(out.open(encoding="utf-8")))
    assert rows[0] == ["file", "class", "Bacterialblight", "Brownspot", "Leafsmut", "error"]
    by_file = {row[0]: row for row in rows[1:]}
    assert by_file["Brownspot/broken.png"][1] == "" and by_file["Brownspot/broken.png"][-1]
    for file, (class_name, probabilities) in expected_answers(model, folder).items():
        assert by_file[file][1] == class_name and by_file[file][-1] == ""
        assert [float(p) for p in by_file[file][2:5]] == pytest.approx(list(probabilities.values()), abs=1e-6)
    photo = next(folder.rglob("0000.png"))
    done = runner.invoke(app, ["predict", "--onnx", str(model), str(photo)])
    assert done.exit_code == 0, done.output
    header, row = done.stdout.splitlines()
    assert header.split() == ["image", "class", "Bacterialblight", "Brownspot", "Leafsmut"]
    assert row.split()[:2] == [str(photo), OnnxClassifier.load(model).predict([photo])[0][0]]


def test_predict_takes_one_of_run_and_onnx(model, folder):
    runner = CliRunner()
    for options in ([], ["--run", "r1", "--onnx", str(model)]):
        done = runner.invoke(app, ["predict", *options, str(folder)])
        assert done.exit_code == 2 and "give --run RUN or --onnx MODEL" in done.output
    done = runner.invoke(app, ["predict", "--onnx", str(folder / "missing.onnx"), str(folder)])
    assert done.exit_code == 1 and "no model file at" in done.output


def uv_like_pip() -> str:
    """The Makefile's UV_LIKE_PIP: `uv pip install ARG...` with the settings pip has here."""
    makefile = (REPO / "Makefile").read_text()
    return re.search(r"^define UV_LIKE_PIP_PY\n(.*?)^endef$", makefile, re.S | re.M).group(1)


@pytest.mark.timeout(600)
def test_the_edge_extra_alone_installs_and_predicts_without_torch(model, folder, tmp_path):
    source = tmp_path / "paddy"
    source.mkdir()
    for name in PROJECT_FILES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, source / name)
    venv = tmp_path / "edge"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python, env = venv / "bin" / "python", {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    # As `make install` does: uv from the package index, then uv with pip's settings.
    got_uv = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "uv"], capture_output=True, text=True, env=env, timeout=300
    )
    if got_uv.returncode != 0:
        pytest.skip(f"no package index reachable to install the edge extra: pip install uv said {got_uv.stderr[-500:]}")
    installed = subprocess.run(
        [str(python), "-c", uv_like_pip(), f"{source}[edge]"], capture_output=True, text=True, env=env, timeout=500
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    for module in HEAVY_MODULES:
        probe = subprocess.run([str(python), "-c", f"import {module}"], capture_output=True, text=True, env=env)
        assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr, f"{module} is installed"
    done = subprocess.run(
        [str(venv / "bin" / "paddy"), "predict", "--onnx", str(model), str(folder), "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    check_json_answers(done.stdout, model, folder)
