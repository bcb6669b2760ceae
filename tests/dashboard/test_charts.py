"""The run curves: train vs val by epoch, axes titled."""

import pandas as pd
import pytest

from services.dashboard import charts, runs


def finished(count: int) -> pd.DataFrame:
    return runs.finished_epochs([
        {"epoch": n, "train_loss": 1 / n, "val_loss": 1.2 / n,
         "train_acc": 1 - 0.5 / n, "val_acc": 1 - 0.6 / n}
        for n in range(1, count + 1)
    ])


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
