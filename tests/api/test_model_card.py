"""The model card (GET /jobs/{run_id}/card and card.md): its figures are the run's own, stored by
the recorder's write path from trainer events (real nx-27017, the API in-process)."""

import hashlib
import json

import pytest
from statsmodels.stats.proportion import proportion_confint

from services.api.model_card import export_record
from services.recorder.writer import BatchWriter
from shared import names
from shared.schemas.events import CheckpointSaved, EvaluationFinished
from tests.utils.api import detail
from tests.utils.documents import stored_run
from tests.utils.events import SPEC, run_events

CLASSES = ["Bacterialblight", "Brownspot", "Leafsmut"]
CONFUSION = [[14, 1, 0], [2, 12, 1], [0, 1, 14]]  # 40 of 45 right
PER_CLASS = {
    "Bacterialblight": {"precision": 14 / 16, "recall": 14 / 15, "f1": 0.9032, "support": 15},
    "Brownspot": {"precision": 12 / 14, "recall": 12 / 15, "f1": 0.8276, "support": 15},
    "Leafsmut": {"precision": 14 / 15, "recall": 14 / 15, "f1": 0.9333, "support": 15},
}
SPLIT = {
    "method": "grouped",
    "split_seed": 0,
    "group_source": "audit",
    "groups": 30,
    "folds": None,
    "fold": None,
    "split_hash": "split-abc",
}
REPRODUCIBILITY = {"seed": 7, "python": "3.12.3", "torch": "2.14.1", "git_commit": "0123abc", "device": "cpu"}
AUDIT = {
    "audited_at": "2026-01-01T00:00:00+00:00",
    "fingerprint": "files-1234",
    "images": 300,
    "unreadable": 0,
    "copy_groups": 12,
    "label_conflicts": 1,
    "shortcuts": 0,
}


@pytest.fixture
def run_id(db, settings) -> str:
    """A completed run as its trainer reported it: evaluated on 45 test images, a best checkpoint
    on disk, its dataset audited."""
    run_id = "run-card"
    spec = SPEC | {"dataset": "leaves", "image_size": 96, "split": "grouped"}
    events = run_events(
        run_id,
        epochs=2,
        spec=spec,
        class_names=CLASSES,
        dataset="leaves",
        test_accuracy=40 / 45,
        test_loss=0.31,
        test_f1_macro=0.888,
        image_size=96,
        confusion_matrix=CONFUSION,
        per_class=PER_CLASS,
        split_hash="split-abc",
        split=SPLIT,
        dataset_files=300,
        dataset_hash="files-1234",
        reproducibility=REPRODUCIBILITY,
    )
    last = events[-1].seq
    checkpoint = settings.artifacts_root / names.RUNS_DIR / run_id / names.BEST_CHECKPOINT
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"weights" * 1000)
    extra = [
        CheckpointSaved(run_id=run_id, seq=last - 2, epoch=2, kind="best", path=f"runs/{run_id}/best.pt"),
        EvaluationFinished(run_id=run_id, seq=last - 1, accuracy=40 / 45, loss=0.31, f1_macro=0.888, images=45),
    ]
    events = events[:-1] + extra + events[-1:]
    for seq, event in enumerate(events, start=events[0].seq):
        event.seq = seq
    BatchWriter(db).write(events)
    db[names.AUDITS].insert_one({"_id": "leaves", "summary": AUDIT})
    return run_id


def test_the_cards_figures_are_the_runs(client, run_id, settings):
    job = client.get(f"/jobs/{run_id}").json()
    summary = job["summary"]
    card = client.get(f"/jobs/{run_id}/card").json()

    test = card["test"]
    assert test["accuracy"] == job["evaluation"]["accuracy"] == summary["test_accuracy"]
    assert (test["images"], test["correct"]) == (45, 40)
    assert test["accuracy_interval"] == job["test_accuracy_interval"]
    assert test["accuracy_interval"] == pytest.approx(list(proportion_confint(40, 45, method="wilson")))
    assert test["confusion_matrix"] == summary["confusion_matrix"] == CONFUSION
    assert (test["loss"], test["f1_macro"]) == (summary["test_loss"], summary["test_f1_macro"])
    assert [row["name"] for row in test["per_class"]] == CLASSES
    for row in test["per_class"]:
        stored = summary["per_class"][row["name"]]
        assert {key: row[key] for key in ("precision", "recall", "f1", "support")} == stored
        right = CONFUSION[CLASSES.index(row["name"])][CLASSES.index(row["name"])]
        assert row["recall_interval"] == pytest.approx(list(proportion_confint(right, 15, method="wilson")))

    data = card["data"]
    assert (data["dataset"], data["class_names"], data["dataset_files"]) == ("leaves", CLASSES, 300)
    assert data["split"] == SPLIT
    assert data["may_leak"] is False and data["audit_of_these_files"] is True
    assert data["audit"]["label_conflicts"] == 1 and data["audit"]["copy_groups"] == 12

    training = card["training"]
    assert training["settings"] == job["spec"]
    for name in ("epochs_run", "train_accuracy", "val_accuracy", "best_val_loss", "duration_minutes"):
        assert training[name] == summary[name], name

    assert card["preprocessing"] == {
        "height": 96,
        "width": 96,
        "resize": "squash",
        "tta": False,
        "interpolation": "bilinear",
        "channels": "RGB",
        "scale": 1 / 255,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
    }
    provenance = card["provenance"]
    assert provenance["split_hash"] == "split-abc" and provenance["dataset_hash"] == "files-1234"
    assert provenance["reproducibility"] == REPRODUCIBILITY
    weights = (settings.artifacts_root / "runs" / run_id / "best.pt").read_bytes()
    assert provenance["checkpoint"] == {
        "path": f"runs/{run_id}/best.pt",
        "epoch": 2,
        "bytes": len(weights),
        "sha256": hashlib.sha256(weights).hexdigest(),
    }
    assert card["export"] is None and card["aliases"] == []
    assert card["warnings"] == [
        "The audit found 1 copy group(s) spanning classes.",
        "Only 45 test images: one image moves the accuracy by 2.2 points.",
    ]


def test_the_markdown_card_shows_the_same_figures(client, run_id):
    client.post("/registry/promote", json={"run_id": run_id, "alias": "candidate", "reason": "first look"})
    response = client.get(f"/jobs/{run_id}/card.md")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/markdown")
    text = response.text
    low, high = proportion_confint(40, 45, method="wilson")
    assert f"- Accuracy: 88.9% (40 of 45 images), 95 % interval {low:.1%}–{high:.1%} (Wilson)" in text
    assert "| Brownspot | 85.7% | 80.0% |" in text
    assert "| true \\ predicted | Bacterialblight | Brownspot | Leafsmut |" in text
    assert "| Brownspot | 2 | 12 | 1 |" in text
    assert "- Registry aliases: candidate" in text
    assert "- Split: grouped, split_seed 0, 30 groups from audit" in text
    assert "normalised with mean [0.5, 0.5, 0.5] and std [0.5, 0.5, 0.5]" in text
    assert "- torch: 2.14.1" in text and "- Split hash: `split-abc`" in text
    assert client.get(f"/jobs/{run_id}/card").json()["aliases"] == ["candidate"]


def test_an_export_record_is_read_defensively(client, run_id, settings):
    record = export_record(settings.artifacts_root, run_id)
    record.parent.mkdir(parents=True)
    # An ExportReport (shared/schemas/exports.py) as the exporter writes it, with a stray entry.
    record.write_text(
        json.dumps(
            {
                "run_id": run_id,
                "status": "completed",
                "exporter": "torch.onnx",
                "opset": 18,
                "parity": {"images": 45, "max_abs_diff": 2e-6, "tolerance": 1e-4, "passed": True, "nested": {}},
                "files": [{"name": "model.onnx", "sha256": "ab" * 32, "bytes": 1000}, {"name": "odd"}],
                "started_at": "2026-01-01T00:00:00+00:00",
                "error": None,
            }
        )
    )
    export = client.get(f"/jobs/{run_id}/card").json()["export"]
    assert export == {
        "status": "completed",
        "parity": {"images": 45, "max_abs_diff": 2e-6, "tolerance": 1e-4, "passed": True},
        "files": {"model.onnx": "ab" * 32},
        "error": None,
        "problem": None,
    }
    assert f"- `model.onnx` sha256 `{'ab' * 32}`" in client.get(f"/jobs/{run_id}/card.md").text

    record.write_text("{not json")
    card = client.get(f"/jobs/{run_id}/card").json()
    assert card["export"]["problem"] == "export.json could not be read (JSONDecodeError)"
    assert "The ONNX export's record is unusable: export.json could not be read (JSONDecodeError)." in card["warnings"]
    record.write_text("[1, 2]")
    assert client.get(f"/jobs/{run_id}/card").json()["export"]["problem"] == "export.json is not a JSON object"


def test_only_a_completed_run_has_a_card(client, db):
    stored_run(db, "run-queued", status="queued")
    for path in ("/jobs/run-queued/card", "/jobs/run-queued/card.md"):
        response = client.get(path)
        assert response.status_code == 409
        assert detail(response) == "run run-queued is queued; a model card is made once it has completed"
    assert client.get("/jobs/no-such-run/card").status_code == 404
    assert client.get("/jobs/bad%00id/card.md").status_code == 422


def test_a_random_split_and_an_unaudited_dataset_are_warned_of(client, db):
    stored_run(db, "run-old", split={**SPLIT, "method": "random", "group_source": None, "groups": None})
    events = run_events("run-old", epochs=1)
    BatchWriter(db).write(events[-1:])  # the trainings document alone
    card = client.get("/jobs/run-old/card").json()
    assert card["data"]["may_leak"] is True and card["data"]["audit"] is None
    assert card["warnings"][:2] == [
        "Split image by image (random): copies of a test photo may also be in training, so the test "
        "figures may be optimistic.",
        "The dataset has not been audited: copies, label conflicts and shortcuts are unchecked.",
    ]
