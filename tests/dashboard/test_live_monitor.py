"""The live monitor page (through app.py's navigation) against a running API with recorded runs."""

import time
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from services.dashboard import api_client
from shared.schemas.events import Heartbeat, RunCancelled
from tests.utils.dashboard import APP, RunPublisher, plotly_figures, trace_values, wait_until_shown
from tests.utils.events import h200_reading
from tests.utils.stack import free_port

pytestmark = pytest.mark.integration


def run_app() -> AppTest:
    app = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not app.exception, app.exception
    return app


def table(app: AppTest) -> pd.DataFrame:
    return app.dataframe[0].value.set_index("run_id")


def curves(figure: dict) -> dict[str, tuple[list, list]]:
    return {trace["name"]: (trace_values(trace["x"]), trace_values(trace["y"])) for trace in figure["data"]}


def test_table_shows_every_run_with_status_progress_and_error(recorded_runs, api_url, dashboard_env):
    dashboard_env(api_url)

    app = run_app()

    assert app.title[0].value == "Live monitor"
    rows = table(app)
    runs = recorded_runs
    assert rows.loc[[runs.running, runs.queued, runs.failed, runs.completed], "status"].tolist() == [
        "🔄 in progress",
        "⏳ queued",
        "❌ failed",
        "✅ completed",
    ]
    assert rows.index.get_loc(runs.running) < rows.index.get_loc(runs.failed)  # newest first
    # Two epochs done and half of the third (batch 5 of 10); 2.5 epochs of 12.5 s left.
    assert rows.loc[runs.running, ["progress", "epoch", "eta", "images_per_sec"]].tolist() == [
        0.5,
        "epoch 3 / 5 · batch 5 / 10",
        "31 s",
        250.0,
    ]
    assert rows.loc[runs.queued, ["progress", "epoch", "model", "version"]].tolist() == [
        0.0,
        "epoch 0 / 7",
        "custom_cnn",
        "v9",
    ]
    assert rows.loc[runs.failed, ["progress", "epoch"]].tolist() == [0.25, "epoch 1 / 4"]
    assert rows.loc[runs.completed, ["progress", "epoch"]].tolist() == [1.0, "epoch 3 / 3"]
    assert rows.loc[runs.failed, "error"] == "OutOfMemoryError: CUDA out of memory"
    assert pd.isna(rows.loc[runs.completed, "error"])
    assert rows.loc[runs.running, "val_loss"] == pytest.approx(1.3 / 2)  # the last finished epoch
    assert rows.loc[runs.completed, "val_acc"] == pytest.approx(1 - 0.5 / 3)
    assert rows.loc[runs.running, "heartbeat"].endswith(" ago")
    assert pd.isna(rows.loc[runs.completed, "heartbeat"])
    assert rows.loc[[runs.completed, runs.queued], "eta"].isna().all()
    assert not app.error


def test_failed_runs_are_tinted_to_stand_out(recorded_runs, api_url, dashboard_env):
    dashboard_env(api_url)

    app = run_app()

    styles = app.dataframe[0].proto.arrow_data.styler.styles
    assert "background-color: rgba(255, 75, 75, 0.18)" in styles
    assert "Details of run" in app.get("page_link")[0].proto.label


def test_newest_running_run_is_selected_with_its_loss_and_accuracy_curves(recorded_runs, api_url, dashboard_env):
    dashboard_env(api_url)

    app = run_app()

    assert app.selectbox[0].value == recorded_runs.running
    figures = plotly_figures(app)
    assert set(figures) == {"Loss", "Accuracy"}
    loss, accuracy = figures["Loss"], figures["Accuracy"]
    assert curves(loss)["train"] == ([1, 2], pytest.approx([1.2, 0.6]))
    assert curves(loss)["val"] == ([1, 2], pytest.approx([1.3, 0.65]))
    assert curves(accuracy)["val"] == ([1, 2], pytest.approx([0.5, 0.75]))
    for figure, metric in ((loss, "loss"), (accuracy, "accuracy")):
        assert figure["layout"]["xaxis"]["title"]["text"] == "epoch"
        assert figure["layout"]["yaxis"]["title"]["text"] == metric
    assert "Epoch 3 is running." in [caption.value for caption in app.caption]


def test_curves_grow_as_epochs_finish(recorded_runs, api, events, api_url, dashboard_env):
    dashboard_env(api_url)
    # Started before the other running run, so it is not the default: the viewer picks it.
    run = RunPublisher(events, model_name="vgg16", epochs=4).start(at=datetime.now(UTC) - timedelta(hours=1))
    run.epoch(1).epoch(2, finish=False)
    wait_until_shown(api, lambda client: client.get(f"/jobs/{run.run_id}").json().get("current_epoch") == 2)
    app = run_app()

    app.selectbox[0].select(run.run_id).run()

    assert curves(plotly_figures(app)["Loss"])["val"][0] == [1]
    run.epoch(2, finish=True).epoch(3, finish=False)
    wait_until_shown(api, lambda client: client.get(f"/jobs/{run.run_id}").json().get("epochs_done") == 2)
    time.sleep(api_client.LIVE_TTL_S)  # what the page fetched last has expired
    # AppTest cannot trigger a fragment's timer; a rerun runs the same fragment code.
    app.run()

    assert not app.exception
    assert app.selectbox[0].value == run.run_id  # the viewer's pick survives refreshes
    assert curves(plotly_figures(app)["Loss"])["val"][0] == [1, 2]
    assert curves(plotly_figures(app)["Accuracy"])["train"][1] == pytest.approx([0.6, 0.8])
    assert table(app).loc[run.run_id, "epoch"] == "epoch 3 / 4"


def test_unreachable_api_is_reported_without_an_exception(dashboard_env):
    url = f"http://127.0.0.1:{free_port()}"
    dashboard_env(url)

    app = run_app()

    assert app.title[0].value == "Live monitor"
    [error] = app.error
    assert f"The API at {url} is unreachable" in error.value
    assert "retries by itself" in error.value
    assert not app.dataframe and not app.get("plotly_chart")


def test_page_recovers_when_the_api_comes_back(recorded_runs, stack, api_url, dashboard_env):
    dashboard_env(api_url)
    app = run_app()
    api_process = stack.process("api")
    api_process.terminate()
    api_process.wait(timeout=10)
    try:
        time.sleep(api_client.LIVE_TTL_S)
        app.run()
        assert not app.exception
        assert "is unreachable" in app.error[0].value
        assert not app.dataframe
    finally:
        stack.restart("api")
    time.sleep(api_client.LIVE_TTL_S)

    app.run()

    assert not app.exception and not app.error
    assert recorded_runs.running in table(app).index


def test_no_runs_yet_says_how_to_queue_one(empty_api_url, dashboard_env):
    dashboard_env(empty_api_url)

    app = run_app()

    assert [info.value for info in app.info] == [
        "No runs yet — queue one on the New job page, with `POST /jobs`, or with `paddy demo`."
    ]
    assert not app.dataframe and not app.error


def test_the_selected_run_is_summed_up_above_its_curves(recorded_runs, api_url, dashboard_env):
    dashboard_env(api_url)

    app = run_app()

    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["status"] == "🔄 in progress"
    assert metrics["epoch"] == "3 / 5"
    assert (metrics["progress"], metrics["ETA"], metrics["images/s"]) == ("50%", "31 s", "250")
    assert metrics["heartbeat"].endswith(" ago")


def test_a_run_on_a_gpu_shows_its_gpu_and_cpu_runs_show_no_gpu_line(recorded_runs, api, events, api_url, dashboard_env):
    dashboard_env(api_url)
    app = run_app()
    # CPU trainers only: no GPU column, no GPU line under the selected run.
    assert "gpu" not in table(app).columns
    assert not [caption for caption in app.caption if caption.value.startswith("GPU ")]

    # Started before the other running run, so it is not the default: the viewer picks it.
    run = RunPublisher(events, model_name="resnet50", epochs=4).start(at=datetime.now(UTC) - timedelta(hours=2))
    try:
        run.epoch(1, finish=False)
        reading = h200_reading(utilization_pct=87.4, memory_used_mib=30_822.4, memory_total_mib=143_360.0)
        run.publish(Heartbeat, gpu=[reading])
        wait_until_shown(api, lambda client: client.get(f"/jobs/{run.run_id}").json().get("gpu") is not None)
        time.sleep(api_client.LIVE_TTL_S)
        app.run()
        app.selectbox[0].select(run.run_id).run()

        assert not app.exception
        shown = "GPU 0 NVIDIA H200: 87 % busy, 30.1 / 140.0 GiB"
        rows = table(app)
        assert rows.loc[run.run_id, "gpu"] == shown
        assert pd.isna(rows.loc[recorded_runs.running, "gpu"])
        assert shown in [caption.value for caption in app.caption]
    finally:
        run.publish(RunCancelled)  # no longer running: the other tests see no GPU
