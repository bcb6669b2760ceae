"""The batch predict page against a running API. No predictor runs here: a batch sent from the page
stays queued, and a finished one is laid out on disk and in Redis as the predictors leave it (the
browser test runs one for real)."""

from pathlib import Path

import pytest

from tests.utils.batches import finished_batch
from tests.utils.dashboard import CLASSES, page
from tests.utils.zips import png, zip_of

pytestmark = pytest.mark.integration
PAGE = "pages/batch_predict.py"


def test_a_zip_is_sent_with_the_chosen_run_and_waits_for_a_predictor(recorded_runs, api_url, dashboard_env):
    dashboard_env(api_url)
    app = page(PAGE)
    assert app.title[0].value == "Batch predict"
    picker = app.selectbox(key="batch.run")
    assert any(option.startswith(recorded_runs.completed) for option in picker.options)
    assert not any(option.startswith(recorded_runs.failed) for option in picker.options)
    assert app.button(key="batch.go").disabled  # nothing to classify yet

    picker.set_value(recorded_runs.completed)
    leaves = zip_of({"plot-1/a.png": png(), "plot-1/b.png": png((150, 90, 30)), "notes.txt": b"plot 7"})
    app.file_uploader[0].set_value(("leaves.zip", leaves, "application/zip")).run()
    app.button(key="batch.go").click().run()

    assert not app.exception and not app.error, [e.value for e in app.error]
    assert app.subheader[0].value.startswith("Batch ")
    assert app.info[0].value == "1 file left out: notes.txt (not a JPEG, PNG or WebP file)."
    [bar] = app.get("progress")
    assert bar.proto.text == "Queued: 2 images wait for a predictor"


def test_a_folder_that_leads_out_is_refused_with_the_reason(recorded_runs, api_url, dashboard_env):
    dashboard_env(api_url)
    app = page(PAGE)
    app.radio(key="batch.source").set_value("folder").run()
    app.text_input(key="batch.folder").input("../..").run()
    app.button(key="batch.go").click().run()

    [error] = app.error
    assert error.value.startswith("The API refused the request (422): folder: folder '../..' must not contain '..'")
    assert not app.get("progress")


def test_a_finished_batch_shows_its_images_and_offers_its_csv(recorded_runs, stack, events, api_url, dashboard_env):
    dashboard_env(api_url)
    images = {f"leaf-{i}.png": png((40 + 20 * i, 140, 40)) for i in range(4)}
    artifacts = Path(stack.env()["PADDY_ARTIFACTS_ROOT"])
    batch_id = finished_batch(artifacts, events, recorded_runs.completed, images, CLASSES)
    app = page(PAGE)
    app.session_state["batch.id"] = batch_id
    app.run()

    assert app.success[0].value == f"4 images classified by run {recorded_runs.completed}."
    [download] = app.get("download_button")
    assert download.proto.label == "Download CSV" and "batch.csv" in download.proto.id
    captions = [caption for image in app.get("image") for caption in image.captions]
    assert sorted(captions) == sorted(f"{CLASSES[i % 3]} · 90%" for i in range(4))

    app.selectbox(key="batch.class").set_value(CLASSES[0]).run()
    captions = [caption for image in app.get("image") for caption in image.captions]
    assert captions == [f"{CLASSES[0]} · 90%"] * 2


def test_no_completed_run_says_what_to_do(empty_api_url, dashboard_env):
    dashboard_env(empty_api_url)
    app = page(PAGE)
    assert app.info[0].value.startswith("No completed run yet — a batch prediction needs a trained run or ensemble")
    assert not app.file_uploader
