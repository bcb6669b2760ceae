"""The run detail page against a running API with recorded runs."""

import pytest
from statsmodels.stats.proportion import proportion_confint

from tests.utils.dashboard import (
    CLASSES,
    CONFUSION,
    axis_titles,
    links,
    page,
    plotly_figures,
    statuses,
    table_with,
    trace_values,
)
from tests.utils.stack import free_port

pytestmark = pytest.mark.integration
PAGE = "pages/run_detail.py"


def settings_of(app) -> dict[str, str]:
    frame = table_with(app, "setting")
    return dict(zip(frame["setting"], frame["value"], strict=True))


def metrics_of(app) -> dict[str, str]:
    return {metric.label: metric.value for metric in app.metric}


def test_a_completed_run_shows_settings_results_curves_and_its_confusion_matrix(recorded_runs, api_url, dashboard_env):
    dashboard_env(api_url)

    app = page(PAGE, {"run_id": recorded_runs.completed})

    assert app.title[0].value == "Run detail"
    assert app.selectbox(key="run_detail.run").value == recorded_runs.completed
    assert app.subheader[0].value == "custom_cnn v1 · ✅ completed"
    settings = settings_of(app)
    assert settings["model"] == "custom_cnn" and settings["version"] == "v1"
    assert settings["number of classes"] == "3"
    assert settings["feature extraction"] == "no"
    assert settings["dropout"] == "0.5" and settings["batch size"] == "32"
    assert settings["learning rate"] == "0.001"
    assert settings["early stopping"] == "patience 10 epochs · ran every epoch"
    metrics = metrics_of(app)
    assert metrics["test accuracy"] == "87.0%"
    assert metrics["val accuracy"] == f"{1 - 0.5 / 3:.1%}"
    assert metrics["best val loss"] == f"{1.3 / 3:.4f}"
    assert metrics["duration"] == "1 min 30 s"
    assert metrics["test F1 (macro)"] == "88.8%"
    # 0.87 of 45 test images: 39 right.
    low, high = proportion_confint(39, 45, method="wilson")
    note = f"Test accuracy: 95 % interval {low:.1%}–{high:.1%} (Wilson) over 45 test images; 1 image = 2.2 points."
    assert note in [caption.value for caption in app.caption]
    assert next(metric for metric in app.metric if metric.label == "test accuracy").help == note

    figures = plotly_figures(app)
    assert set(figures) == {
        "Loss",
        "Accuracy",
        "Epoch time",
        "Confusion matrix (test split)",
        "Per-class scores (test split)",
    }
    assert trace_values(figures["Loss"]["data"][1]["y"]) == pytest.approx([1.3, 0.65, 1.3 / 3])
    assert trace_values(figures["Epoch time"]["data"][0]["y"]) == [12.5, 12.5, 12.5]
    assert axis_titles(figures["Epoch time"]) == ("epoch", "time per epoch (s)")
    confusion = figures["Confusion matrix (test split)"]
    assert confusion["data"][0]["z"] == CONFUSION and confusion["data"][0]["x"] == CLASSES
    assert axis_titles(confusion) == ("predicted class", "true class")
    assert axis_titles(figures["Per-class scores (test split)"]) == ("class", "score")

    per_class = table_with(app, "precision")
    assert per_class["class"].tolist() == CLASSES
    assert per_class["recall"].tolist() == pytest.approx([14 / 15, 12 / 15, 14 / 15])
    epochs = table_with(app, "epoch_time_sec")
    assert epochs["epoch"].tolist() == [1, 2, 3]
    assert epochs["val_acc"].tolist() == pytest.approx([0.5, 0.75, 1 - 0.5 / 3])

    assert [button.proto.label for button in app.get("download_button")] == ["Best checkpoint"]
    actions = [button.key for button in app.button if not button.key.startswith("run_detail.cell.")]
    # A finished run: no cancel; no alias to demote; never exported, so no model to download yet.
    assert actions == ["run_detail.retry", "registry.promote", "export.ask"]
    assert [button.label for button in app.button if button.key == "export.ask"] == ["Export to ONNX"]


def test_a_confusion_cell_opens_the_gallery_of_its_images(recorded_runs, api_url, dashboard_env):
    dashboard_env(api_url)
    app = page(PAGE, {"run_id": recorded_runs.completed})
    # Nine cells, labelled with their counts; an empty cell cannot be opened.
    cells = {button.key: button for button in app.button if button.key.startswith("run_detail.cell.")}
    assert [cells[f"run_detail.cell.{t}.{p}"].label for t in range(3) for p in range(3)] == [
        str(count) for row in CONFUSION for count in row
    ]
    assert cells["run_detail.cell.0.2"].disabled and not cells["run_detail.cell.0.1"].disabled
    # The gallery starts with every test image, most confident first: a page of 24 of 45.
    assert len(app.get("image")) == 24
    assert "Images 1–24 of 45 matching (45 tested)." in [caption.value for caption in app.caption]

    cells["run_detail.cell.1.2"].click().run()  # true Brownspot, predicted Leafsmut

    assert app.selectbox(key="gallery.true").value == "Brownspot"
    assert app.selectbox(key="gallery.predicted").value == "Leafsmut"
    # The recorded run got its last 6 of 45 test images wrong, each as the next class: images 40
    # and 43 are the Brownspot ones (the 14th and 15th), thumbnails of the `tiny` files themselves.
    images = app.get("image")
    assert [caption for image in images for caption in image.captions] == ["❌ Brownspot → Leafsmut · 90%"] * 2
    assert all(url.endswith(".jpg") for image in images for url in image.value)
    assert "Images 1–2 of 2 matching (45 tested)." in [caption.value for caption in app.caption]

    app.selectbox(key="gallery.predicted").select("any").run()
    app.selectbox(key="gallery.which").select("right").run()
    captions = [caption for image in app.get("image") for caption in image.captions]
    assert len(captions) == 13 and set(captions) == {"✅ Brownspot · 90%"}


def test_a_failed_run_shows_its_error_and_can_be_retried(recorded_runs, api, api_url, dashboard_env):
    dashboard_env(api_url)
    app = page(PAGE, {"run_id": recorded_runs.failed})
    assert app.error[0].value == "OutOfMemoryError: CUDA out of memory"
    assert metrics_of(app)["test accuracy"] == "—"
    assert not [caption.value for caption in app.caption if caption.value.startswith("Test accuracy:")]
    assert [info.value for info in app.info][-1].startswith("The confusion matrix and per-class scores appear")

    app.button(key="run_detail.retry").click().run()

    assert not app.exception and not app.error[1:], [error.value for error in app.error]
    [success] = app.success
    new_run = success.value.split()[2]
    assert success.value.startswith(f"Queued run {new_run} (")
    retried = api.get(f"/jobs/{new_run}").json()
    assert retried["retry_of"] == recorded_runs.failed and retried["status"] == "queued"
    assert f"run_id={new_run}" in links(app)[f"Open run {new_run}"]


def test_cancel_stops_a_queued_run(api, api_url, dashboard_env):
    dashboard_env(api_url)
    run_id = api.post("/jobs", json={"model_name": "custom_cnn", "dataset": "tiny", "epochs": 2}).json()["run_id"]
    app = page(PAGE, {"run_id": run_id})
    assert app.subheader[0].value.endswith("⏳ queued")

    app.button(key="run_detail.cancel").click().run()

    assert app.success[0].value.startswith("Cancel requested")
    assert statuses(api)[run_id] == "cancelled"


def test_without_the_api_key_a_write_says_how_to_fix_it(api, api_url, dashboard_env):
    dashboard_env(api_url, api_key=None)
    run_id = api.post("/jobs", json={"model_name": "custom_cnn", "dataset": "tiny", "epochs": 2}).json()["run_id"]
    app = page(PAGE, {"run_id": run_id})

    app.button(key="run_detail.cancel").click().run()

    assert [error.value for error in app.error] == [
        "The API refused the request: set PADDY_API_KEY for the dashboard to the API's key."
    ]
    assert statuses(api)[run_id] == "queued"


def test_a_running_run_shows_its_finished_epochs(recorded_runs, api_url, dashboard_env):
    dashboard_env(api_url)

    app = page(PAGE, {"run_id": recorded_runs.running})

    assert app.subheader[0].value == "resnet50 v1 · 🔄 in progress"
    assert trace_values(plotly_figures(app)["Accuracy"]["data"][1]["y"]) == pytest.approx([0.5, 0.75])
    assert [button.key for button in app.button] == ["run_detail.cancel"]
    assert not app.get("download_button")


def test_an_unknown_run_id_is_named_and_the_picker_offers_the_others(recorded_runs, api_url, dashboard_env):
    dashboard_env(api_url)

    app = page(PAGE, {"run_id": "nosuchrun"})

    assert app.warning[0].value == "Run nosuchrun does not exist; pick another."
    assert any(option.startswith(recorded_runs.completed) for option in app.selectbox(key="run_detail.run").options)


def test_picking_another_run_shows_it(recorded_runs, api_url, dashboard_env):
    dashboard_env(api_url)
    app = page(PAGE, {"run_id": recorded_runs.completed})

    app.selectbox(key="run_detail.run").select(recorded_runs.failed).run()

    assert app.subheader[0].value == "mobilenet_v2 v1 · ❌ failed"
    assert app.query_params["run_id"] == recorded_runs.failed


def test_no_runs_and_no_api_are_explained(empty_api_url, dashboard_env):
    dashboard_env(empty_api_url)
    assert page(PAGE).info[0].value.startswith("No runs yet — queue one on the New job page")

    url = f"http://127.0.0.1:{free_port()}"
    dashboard_env(url)
    app = page(PAGE)
    assert f"The API at {url} is unreachable" in app.error[0].value
    assert not app.dataframe
