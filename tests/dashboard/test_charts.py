"""The run curves: train vs val by epoch, axes titled."""

import pandas as pd
import pytest

from services.dashboard import charts, run_views


def finished(count: int) -> pd.DataFrame:
    return run_views.finished_epochs(
        [
            {"epoch": n, "train_loss": 1 / n, "val_loss": 1.2 / n, "train_acc": 1 - 0.5 / n, "val_acc": 1 - 0.6 / n}
            for n in range(1, count + 1)
        ]
    )


@pytest.mark.parametrize(("metric", "column"), [("loss", "loss"), ("accuracy", "acc")])
def test_train_and_val_curves_by_epoch(metric, column):
    epochs = finished(3)

    figure = charts.curves_figure(epochs, metric)

    assert [trace.name for trace in figure.data] == ["train", "val"]
    for trace in figure.data:
        assert list(trace.x) == [1, 2, 3]
        assert list(trace.y) == pytest.approx(epochs[f"{trace.name}_{column}"].tolist())
    assert figure.layout.xaxis.title.text == "epoch"
    assert figure.layout.yaxis.title.text == metric
    assert figure.layout.title.text == metric.capitalize()


def test_accuracy_reads_as_percent_and_loss_as_numbers():
    assert charts.curves_figure(finished(2), "accuracy").layout.yaxis.tickformat == ".0%"
    assert charts.curves_figure(finished(2), "loss").layout.yaxis.tickformat is None


def test_unknown_metric_is_refused():
    with pytest.raises(KeyError):
        charts.curves_figure(finished(1), "f1")


def titles(figure) -> tuple[str, str]:
    return figure.layout.xaxis.title.text, figure.layout.yaxis.title.text


def test_every_new_chart_has_labelled_axes_with_units():
    epochs = finished(3).assign(epoch_time_sec=[10.0, 11.0, 9.5])
    per_class = pd.DataFrame({"class": ["a", "b"], "precision": [0.9, 0.8], "recall": [1.0, 0.7], "f1": [0.95, 0.75]})
    overlay = pd.DataFrame(
        {"run": ["r1", "r1", "r2"], "epoch": [1, 2, 1], "val_loss": [1.0, 0.8, 0.9], "val_acc": [0.5, 0.6, 0.55]}
    )
    points = pd.DataFrame(
        {
            "run_id": ["r1", "r2"],
            "version": ["v1", "v2"],
            "model": ["m", "m"],
            "learning_rate": [1e-3, 1e-4],
            "val_accuracy": [0.8, 0.9],
            "start_time": pd.to_datetime(["2026-03-01", "2026-03-02"], utc=True),
        }
    )

    assert titles(charts.epoch_time_figure(epochs)) == ("epoch", "time per epoch (s)")
    assert titles(charts.confusion_figure([[3, 1], [0, 4]], ["a", "b"])) == ("predicted class", "true class")
    assert titles(charts.per_class_figure(per_class)) == ("class", "score")
    assert titles(charts.overlay_figure(overlay, "val_loss")) == ("epoch", "val loss")
    accuracy = charts.overlay_figure(overlay, "val_acc")
    assert titles(accuracy) == ("epoch", "val accuracy") and accuracy.layout.yaxis.tickformat == ".0%"
    assert [trace.name for trace in accuracy.data] == ["r1", "r2"]
    scatter = charts.hyperparameter_figure(points, "learning_rate", "val_accuracy", "val accuracy", True)
    assert titles(scatter) == ("learning rate", "val accuracy") and scatter.layout.xaxis.type == "log"
    assert titles(charts.probabilities_figure({"a": 0.7, "b": 0.3})) == ("probability", "class")
    assert titles(charts.runs_over_time_figure(points, "val_accuracy", "val accuracy")) == (
        "start time (UTC)",
        "val accuracy",
    )


def test_probabilities_put_the_most_likely_class_on_top():
    figure = charts.probabilities_figure({"Leafsmut": 0.1, "Brownspot": 0.7, "Bacterialblight": 0.2})
    assert list(figure.data[0].y) == ["Leafsmut", "Bacterialblight", "Brownspot"]  # plotly draws bottom-up


def test_parallel_coordinates_name_categories_and_colour_by_the_metric():
    frame = pd.DataFrame(
        {"model_name": ["a", "b", "a"], "learning_rate": [1e-3, 1e-4, 1e-2], "val_accuracy": [0.7, 0.9, None]}
    )

    figure = charts.parallel_figure(frame, ["model_name", "learning_rate"], "val_accuracy", "val accuracy")

    dimensions = figure.data[0].dimensions
    assert [d.label for d in dimensions] == ["model name", "learning rate", "val accuracy"]
    assert list(dimensions[0].ticktext) == ["a", "b"] and list(dimensions[0].values) == [0, 1]
    assert list(dimensions[2].values) == [0.7, 0.9]  # the run without the metric is left out
