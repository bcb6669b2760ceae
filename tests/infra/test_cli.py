"""The `paddy` command: `train` and `predict` in the foreground without the stack (CPU, 32 px), and
what `up`, `status`, `restart` and `down` refuse before any process starts (tests/infra/test_supervisor.py
runs the stack)."""

import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from infra.cli import app
from services.trainer import checkpoints
from shared.datasets.synth import synthesize_dataset
from shared.models import MODELS
from shared.schemas.datasets import DatasetAudit
from shared.schemas.events import TrainingSummary, decode_event
from shared.schemas.jobs import JobSpec

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[str, Path, Path]:
    """(run id, artifacts directory, dataset) of one `paddy train` run."""
    data, artifacts = tmp_path_factory.mktemp("tiny"), tmp_path_factory.mktemp("artifacts")
    synthesize_dataset(data, per_class=10, size=32, seed=2)
    result = runner.invoke(
        app,
        [
            "train",
            "--model",
            "custom_cnn",
            "--data",
            str(data),
            "--epochs",
            "2",
            "--image-size",
            "32",
            "--batch-size",
            "8",
            "--artifacts",
            str(artifacts),
        ],
    )
    assert result.exit_code == 0, result.output
    run_id = re.search(r"run (\w+): test accuracy", result.stdout).group(1)
    return run_id, artifacts, data


def test_train_reports_each_epoch_and_where_the_results_went(trained):
    run_id, artifacts, data = trained
    run_dir = checkpoints.run_dir(artifacts, run_id)
    assert {"best.pt", "last.pt", "events.jsonl", "summary.json"} <= {p.name for p in run_dir.iterdir()}
    events = [decode_event({"event": line}) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    checkpoints_saved = [e for e in events if e.type == "checkpoint_saved"]
    assert [e.type for e in events if e.type != "checkpoint_saved"] == [
        "dataset_audited",  # its split needed the dataset's copy groups: audited before it started
        "run_started",
        "epoch_started",
        "epoch_finished",
        "epoch_started",
        "epoch_finished",
        "evaluation_finished",
        "test_predictions",
        "run_completed",
    ]
    assert [(e.epoch, e.kind) for e in checkpoints_saved if e.kind == "last"] == [(1, "last"), (2, "last")]
    summary = TrainingSummary.model_validate_json((run_dir / "summary.json").read_text())
    assert summary == events[-1].summary and summary.epochs_run == 2 and summary.dataset == str(data)


def test_train_refuses_an_invalid_job(tmp_path):
    result = runner.invoke(app, ["train", "--model", "alexnet", "--data", str(tmp_path)])
    assert result.exit_code == 2 and "unknown model 'alexnet'" in result.output


def test_train_options_say_what_jobspec_says(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # one line per option
    result = runner.invoke(app, ["train", "--help"])
    assert f"model name: {', '.join(MODELS)}" in result.output
    for field in ("epochs", "patience", "feature_extraction", "split", "split_seed"):
        assert JobSpec.model_fields[field].description in result.output, field
    assert "HEIGHTxWIDTH (96x320)" in result.output
    assert "--feature-views" in result.output  # its description wraps


def test_predict_prints_a_table_or_json(trained):
    run_id, artifacts, data = trained
    images = [str(p) for p in sorted(data.rglob("*.png"))[:2]]
    table = runner.invoke(app, ["predict", "--run", run_id, "--artifacts", str(artifacts), *images])
    assert table.exit_code == 0, table.output
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["image", "class", "Bacterialblight", "Brownspot", "Leafsmut"]
    assert [row.split()[0] for row in rows] == images

    as_json = runner.invoke(app, ["predict", "--run", run_id, "--artifacts", str(artifacts), "--json", *images])
    answers = json.loads(as_json.stdout)
    assert [a["image"] for a in answers] == images
    assert all(sum(a["probabilities"].values()) == pytest.approx(1, abs=1e-5) for a in answers)


def test_predict_names_the_unreadable_image(trained, tmp_path):
    run_id, artifacts, _data = trained
    notes = tmp_path / "notes.png"
    notes.write_text("hello")
    result = runner.invoke(app, ["predict", "--run", run_id, "--artifacts", str(artifacts), str(notes)])
    assert result.exit_code == 1 and f"cannot read image {notes}" in result.output


def test_up_refuses_an_env_option_that_is_not_name_value(tmp_path):
    result = runner.invoke(app, ["up", "--detach", "--state-dir", str(tmp_path), "--env", "PADDY_X"])
    assert result.exit_code == 2 and "'PADDY_X' is not NAME=VALUE" in result.output
    assert not (tmp_path / "stack.json").exists()


def test_up_refuses_an_unknown_service_before_starting_anything(tmp_path):
    result = runner.invoke(app, ["up", "--detach", "--state-dir", str(tmp_path), "--services", "redis,mongodb"])
    assert result.exit_code == 1 and "unknown service(s) ['mongodb']" in result.output
    assert not (tmp_path / "logs").exists()


def test_status_restart_and_down_without_a_stack(tmp_path):
    status = runner.invoke(app, ["status", "--state-dir", str(tmp_path)])
    assert status.exit_code == 1 and f"nothing is running in {tmp_path}" in status.output
    restart = runner.invoke(app, ["restart", "api", "--state-dir", str(tmp_path)])
    assert restart.exit_code == 1 and "no stack is running" in restart.output
    down = runner.invoke(app, ["down", "--state-dir", str(tmp_path)])
    assert down.exit_code == 0 and down.output == "nothing was running\n"


def test_data_audit_prints_the_report_label_conflicts_first_and_as_json(tmp_path):
    data = tmp_path / "leaves"
    synthesize_dataset(data, per_class=5, size=128, seed=4)
    Image.open(data / "Leafsmut" / "0001.png").rotate(75, expand=True).save(data / "Leafsmut" / "turned.png")
    shutil.copyfile(data / "Brownspot" / "0002.png", data / "Bacterialblight" / "filed-twice.png")

    result = runner.invoke(app, ["data", "audit", str(data)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("dataset leaves (fingerprint ") and "17 images" in lines[0]
    assert [line.split()[:2] for line in lines if line.startswith(("class", "Bacterialblight", "Leafsmut"))] == [
        ["class", "images"],
        ["Bacterialblight", "6"],
        ["Leafsmut", "6"],
    ]
    conflict = lines.index("  LABEL CONFLICT: 2 identical files in Bacterialblight, Brownspot")
    same_photo = lines.index("  same photo: 2 near copies in Leafsmut")
    assert conflict < same_photo
    assert lines[conflict + 1 : conflict + 3] == ["    Bacterialblight/filed-twice.png", "    Brownspot/0002.png"]
    assert "reading" in result.stderr and "reading" not in result.stdout  # the progress bar

    as_json = runner.invoke(app, ["data", "audit", str(data), "--json", "--dataset", "demo/leaves"])
    assert as_json.exit_code == 0, as_json.output
    audit = DatasetAudit.model_validate_json(as_json.stdout)
    assert audit.dataset == "demo/leaves" and audit.images == 17
    assert [(g.kind, g.classes) for g in audit.copy_groups] == [
        ("exact", ["Bacterialblight", "Brownspot"]),
        ("near", ["Leafsmut"]),
    ]


def test_data_audit_of_a_folder_that_is_no_dataset_fails_with_the_reason(tmp_path):
    (tmp_path / "one-class").mkdir()
    result = runner.invoke(app, ["data", "audit", str(tmp_path)])
    assert result.exit_code == 1 and "has 1 class folder(s); need at least 2" in result.output


def test_data_synth_draws_strips_with_tiles_of_the_crop_classes(tmp_path):
    out = tmp_path / "strips"
    result = runner.invoke(
        app,
        ["data", "synth", "--out", str(out), "--per-class", "2", "--size", "32", "--shape", "strip"]
        + ["--crop-classes", "Leafsmut"],
    )
    assert result.exit_code == 0, result.output
    assert f"2  {out / 'Leafsmut'}  (tiles)" in result.output
    assert f"2  {out / 'Brownspot'}\n" in result.output
    for path in sorted(out.rglob("*.png")):
        with Image.open(path) as image:
            width, height = image.size
        assert (width == height) if path.parent.name == "Leafsmut" else (width > 2 * height)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--shape", "oval"], "unknown shape 'oval'"),
        (["--shape", "strip", "--crop-classes", "Brownspot,Healthy"], "unknown crop classes ['Healthy']"),
        (["--crop-classes", "Leafsmut"], "shape must be 'strip'"),
        (["--shape", "strip", "--size", "16"], "size must be 32..1024 px"),
    ],
)
def test_data_synth_refuses_bad_shapes(tmp_path, arguments, message):
    result = runner.invoke(app, ["data", "synth", "--out", str(tmp_path / "data"), *arguments])
    assert result.exit_code == 1
    assert result.output.startswith("paddy data synth: ") and message in result.output
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("size", ["96x", "96x320x3", "big"])
def test_train_refuses_an_image_size_that_is_neither_a_side_nor_height_x_width(tmp_path, size):
    result = runner.invoke(app, ["train", "--model", "custom_cnn", "--data", str(tmp_path), "--image-size", size])
    assert result.exit_code == 2 and "HEIGHTxWIDTH" in result.output and "Traceback" not in result.output
