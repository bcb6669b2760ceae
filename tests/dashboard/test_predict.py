"""The predict page against a running API (no trainer: the browser test predicts for real)."""

import io

import pytest
from PIL import Image

from tests.utils.dashboard import page

pytestmark = pytest.mark.integration
PAGE = "pages/predict.py"


def leaf_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (40, 140, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_completed_runs_are_offered_and_a_photo_is_asked_for(recorded_runs, api_url, dashboard_env):
    dashboard_env(api_url)

    app = page(PAGE)

    assert app.title[0].value == "Predict"
    picker = app.selectbox(key="predict.run")
    assert recorded_runs.completed in picker.options[0] or any(
        option.startswith(recorded_runs.completed) for option in picker.options
    )
    assert not any(option.startswith(recorded_runs.failed) for option in picker.options)
    assert app.info[0].value == "Upload a photo of a rice leaf to classify it."


def test_an_uploaded_photo_is_sent_with_the_chosen_run(recorded_runs, api_url, dashboard_env):
    dashboard_env(api_url)
    app = page(PAGE)
    app.selectbox(key="predict.run").set_value(recorded_runs.completed)

    app.file_uploader[0].set_value(("leaf.png", leaf_png(), "image/png")).run()
    assert len(app.get("imgs")) == 1 or app.get("image")
    app.button(key="predict.go").click().run()

    # No trainer serves the predict queue here, so the API gives up after PADDY_PREDICT_TIMEOUT_S.
    [error] = app.error
    assert error.value.startswith("The API refused the request (504)")
    assert not app.get("plotly_chart")


def test_no_completed_run_says_what_to_do(empty_api_url, dashboard_env):
    dashboard_env(empty_api_url)

    app = page(PAGE)

    assert app.info[0].value.startswith("No completed run yet — a prediction needs a trained run or ensemble")
    assert not app.file_uploader
