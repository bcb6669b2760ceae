"""What the run detail page shows of a run: settings, formatted results, per-class scores, epochs."""

import pytest

from services.dashboard import detail

SUMMARY = {
    "num_classes": 3,
    "class_names": ["a", "b", "c"],
    "early_stopped": True,
    "dropout": 0.3,
    "feature_extraction": True,
    "batch_size": 16,
    "learning_rate": 0.0003,
    "train_accuracy": 0.99,
    "val_accuracy": 0.9,
    "test_accuracy": 0.875,
    "best_val_loss": 0.31234,
    "duration_minutes": 62.5,
    "test_f1_macro": 0.8612,
    "per_class": {
        "c": {"precision": 1.0, "recall": 0.5, "f1": 0.667, "support": 4},
        "a": {"precision": 0.8, "recall": 1.0, "f1": 0.889, "support": 4},
        "b": {"precision": 0.75, "recall": 0.75, "f1": 0.75, "support": 4},
    },
}


def run(**fields) -> dict:
    return {
        "run_id": "r1",
        "status": "completed",
        "model_name": "resnet50",
        "version": "v2",
        "spec": {
            "dropout": 0.5,
            "batch_size": 32,
            "learning_rate": 0.001,
            "feature_extraction": False,
            "patience": 4,
            "image_size": 224,
            "dataset": "rice",
        },
        "epochs_planned": 30,
        "epochs_done": 12,
        "start_time": "2026-03-01T10:00:00Z",
        "end_time": "2026-03-01T11:02:30Z",
        "metrics": {},
        "summary": SUMMARY,
        "checkpoints": {},
        **fields,
    }


def test_settings_come_from_the_summary_of_a_completed_run():
    table = dict(detail.settings_table(run()).itertuples(index=False))

    assert table["number of classes"] == "3"
    assert table["feature extraction"] == "yes (backbone frozen)"
    assert (table["dropout"], table["batch size"], table["learning rate"]) == ("0.3", "16", "0.0003")
    assert table["early stopping"] == "patience 4 epochs · stopped early"
    assert table["epochs"] == "12 of at most 30"


def test_a_queued_run_shows_its_spec_and_dashes():
    table = dict(
        detail.settings_table(run(status="queued", summary=None, spec={"dropout": None})).itertuples(index=False)
    )

    assert table["dropout"] == "none" and table["batch size"] == "—" and table["early stopping"] == "—"
    assert set(detail.result_metrics(run(summary=None, end_time=None)).values()) >= {"—"}


def test_results_are_formatted_with_units():
    metrics = detail.result_metrics(run())

    assert metrics["test accuracy"] == "87.5%" and metrics["test F1 (macro)"] == "86.1%"
    assert metrics["best val loss"] == "0.3123"
    assert metrics["duration"] == "1 h 2 min"
    assert (metrics["start (UTC)"], metrics["end (UTC)"]) == ("2026-03-01 10:00:00", "2026-03-01 11:02:30")


def test_per_class_scores_follow_the_class_order():
    frame = detail.per_class_frame(SUMMARY)

    assert frame["class"].tolist() == ["a", "b", "c"]
    assert frame["recall"].tolist() == [1.0, 0.75, 0.5]
    assert detail.per_class_frame(None).empty


def test_epochs_table_parses_times_and_keeps_the_running_epoch():
    frame = detail.epochs_frame(
        [
            {
                "epoch": 1,
                "train_loss": 1.0,
                "val_loss": 1.1,
                "train_acc": 0.5,
                "val_acc": 0.4,
                "epoch_time_sec": 9.5,
                "started_at": "2026-03-01T10:00:00Z",
                "finished_at": "2026-03-01T10:00:09.5Z",
            },
            {"epoch": 2, "started_at": "2026-03-01T10:00:10Z"},
        ]
    )

    assert frame["epoch"].tolist() == [1, 2]
    assert frame["val_loss"].isna().tolist() == [False, True]
    assert str(frame["finished_at"].dtype).startswith("datetime64") and frame["finished_at"].isna()[1]


@pytest.mark.parametrize(
    ("status", "cancel", "retry"),
    [
        ("queued", True, False),
        ("in_progress", True, False),
        ("lost", True, True),
        ("completed", False, True),
        ("failed", False, True),
        ("cancelled", False, True),
    ],
)
def test_which_actions_a_run_offers(status, cancel, retry):
    assert (detail.can_cancel({"status": status}), detail.can_retry({"status": status})) == (cancel, retry)


def test_a_checkpoint_is_offered_once_a_best_one_was_saved():
    assert not detail.has_checkpoint(run())
    assert detail.has_checkpoint(run(checkpoints={"best": {"epoch": 3, "path": "r1/best.pt"}}))
