"""The compare page's tables: the runs table, best per model, hyperparameters, sweeps, overlays."""

import pandas as pd
import pytest

from services.dashboard import comparison


def run(run_id: str, status: str = "completed", model: str = "custom_cnn", **metrics) -> dict:
    return {
        "run_id": run_id,
        "status": status,
        "model_name": model,
        "version": "v1",
        "epochs_planned": 10,
        "epochs_done": metrics.get("epochs_run", 0),
        "start_time": "2026-03-01T10:00:00Z",
        "end_time": None,
        "spec": {"dropout": 0.5, "feature_extraction": False, "batch_size": 32, "learning_rate": 1e-3},
        "metrics": metrics,
        "sweep_id": None,
    }


def test_the_runs_table_has_the_originals_columns_and_test_f1():
    frame = comparison.runs_table(
        [
            run("a", val_accuracy=0.9, test_accuracy=0.85, test_f1_macro=0.84, epochs_run=7, duration_minutes=3.0),
            run("b", status="queued"),
        ]
    ).set_index("run_id")

    assert list(frame.columns) == comparison.TABLE_COLUMNS[1:]
    assert frame.loc["a", "early_stopped"] and frame.loc["a", "epochs_run"] == 7
    assert frame.loc["a", "test_f1_macro"] == 0.84 and frame.loc["a", "learning_rate"] == 0.001
    assert pd.isna(frame.loc["b", "early_stopped"]) and pd.isna(frame.loc["b", "epochs_run"])
    assert frame.loc["a", "status"] == "✅ completed"


def test_best_per_model_skips_models_without_runs_and_ranks_by_the_metric():
    frame = comparison.best_per_model(
        {
            "vgg16": run("v", model="vgg16", val_accuracy=0.8),
            "resnet50": None,
            "custom_cnn": run("c", val_accuracy=0.9),
        },
        "val_accuracy",
    )

    assert frame["model"].tolist() == ["custom_cnn", "vgg16"]
    losses = comparison.best_per_model(
        {"a": run("a", best_val_loss=0.2), "b": run("b", best_val_loss=0.1)}, "best_val_loss"
    )
    assert losses["run_id"].tolist() == ["b", "a"]  # lower is better
    assert list(comparison.best_per_model({}, "test_accuracy").columns) == [
        "model",
        "run_id",
        "version",
        "test_accuracy",
        "epochs_run",
    ]


def test_hyperparameter_frame_keeps_runs_with_both_values():
    frame = comparison.hyperparameter_frame([run("a", val_accuracy=0.9), run("b")], "learning_rate", "val_accuracy")

    assert frame[["run_id", "learning_rate", "val_accuracy"]].values.tolist() == [["a", 0.001, 0.9]]


def test_a_sweep_frame_names_what_varies():
    runs = [run("a", val_accuracy=0.7), run("b", status="in_progress")]
    runs[1]["spec"] = {**runs[1]["spec"], "learning_rate": 1e-4, "batch_size": 64}

    frame, varying = comparison.sweep_frame({"metric": "val_accuracy", "runs": runs})

    assert varying == ["learning_rate", "batch_size"]
    assert frame["val_accuracy"].isna().tolist() == [False, True]


def test_overlay_frame_lines_runs_up_by_epoch_without_unfinished_epochs():
    compared = {
        "runs": [run("a"), run("b")],
        "epochs": [
            {
                "epoch": 1,
                "runs": {
                    "a": {"val_loss": 1.0, "val_acc": 0.5, "train_loss": 1.1, "train_acc": 0.4},
                    "b": {"val_loss": 0.9, "val_acc": 0.6, "train_loss": 1.0, "train_acc": 0.5},
                },
            },
            {"epoch": 2, "runs": {"a": {"val_loss": None}, "b": None}},
        ],
    }

    frame = comparison.overlay_frame(compared)

    assert frame[["run_id", "epoch", "val_loss"]].values.tolist() == [["a", 1, 1.0], ["b", 1, 0.9]]
    assert frame["run"].tolist() == ["a · custom_cnn v1", "b · custom_cnn v1"]


@pytest.mark.parametrize(
    ("key", "descending", "expected"), [("val_accuracy", True, "-val_accuracy"), ("start_time", False, "start_time")]
)
def test_sort_param(key, descending, expected):
    assert comparison.sort_param(key, descending) == expected


def test_sweep_ids_in_first_seen_order():
    runs = [run("a"), run("b"), run("c")]
    runs[0]["sweep_id"], runs[2]["sweep_id"] = "s2", "s1"
    assert comparison.sweep_ids(runs + [runs[0]]) == ["s2", "s1"]


def test_a_sweep_over_strip_sizes_shows_them_as_height_x_width():
    runs = [
        {"run_id": "a", "status": "completed", "model_name": "custom_cnn", "spec": {"image_size": [96, 320]}},
        {"run_id": "b", "status": "completed", "model_name": "custom_cnn", "spec": {"image_size": 128}},
    ]
    frame, varying = comparison.sweep_frame({"metric": "val_accuracy", "runs": runs})
    assert frame["image_size"].tolist() == ["96x320", 128] and "image_size" in varying
