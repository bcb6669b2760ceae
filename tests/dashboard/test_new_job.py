"""The new job / sweep page against a running API: a form from GET /models, POST /jobs, POST /sweeps."""

import shutil

import pytest

from shared.datasets.synth import synthesize_dataset
from tests.utils.dashboard import links, page

pytestmark = pytest.mark.integration
PAGE = "pages/new_job.py"


def test_the_form_starts_from_the_chosen_models_defaults(api_url, dashboard_env):
    dashboard_env(api_url)

    app = page(PAGE)

    assert app.title[0].value == "New job"
    assert app.selectbox(key="new_job.model").value == "custom_cnn"
    assert app.number_input(key="new_job.custom_cnn.epochs").value == 100
    assert app.number_input(key="new_job.custom_cnn.learning_rate").value == pytest.approx(0.001)
    assert app.checkbox(key="new_job.custom_cnn.feature_extraction").value is False
    app.selectbox(key="new_job.model").select("resnet50").run()
    assert app.checkbox(key="new_job.resnet50.feature_extraction").value is True
    assert app.text_input(key="new_job.resnet50.weights").value == "imagenet"


def test_a_missing_dataset_is_named_before_anything_is_sent(api_url, dashboard_env):
    dashboard_env(api_url)
    app = page(PAGE)

    app.button[0].click().run()

    assert app.error[0].value.startswith("Check the form — dataset: name a dataset folder")
    assert not app.success


def test_a_job_is_queued_and_linked_to_its_detail_page(api, api_url, dashboard_env):
    dashboard_env(api_url)
    app = page(PAGE)

    app.selectbox(key="new_job.dataset").select("tiny").run()
    app.number_input(key="new_job.custom_cnn.epochs").set_value(2)
    app.text_input(key="new_job.custom_cnn.image_size").set_value("64")
    app.button[0].click().run()

    [success] = app.success
    run_id = success.value.split()[2]
    run = api.get(f"/jobs/{run_id}").json()
    assert run["status"] == "queued"
    assert run["spec"]["epochs"] == 2 and run["spec"]["image_size"] == 64 and run["spec"]["dataset"] == "tiny"
    assert links(app)[f"Open run {run_id}"] == f"run_id={run_id}"


def test_the_apis_refusal_is_shown_with_the_field(api_url, dashboard_env, stack):
    dashboard_env(api_url)
    synthesize_dataset(stack.state_dir / "data" / "vanishing", per_class=2, size=16, seed=1)
    app = page(PAGE)

    app.selectbox(key="new_job.dataset").select("vanishing").run()
    shutil.rmtree(stack.state_dir / "data" / "vanishing")  # gone before the job is queued
    app.button[0].click().run()

    [error] = app.error
    assert error.value.startswith("The API refused the request (422): dataset:")
    assert not app.success


def test_a_sweep_queues_every_combination(api, api_url, dashboard_env):
    dashboard_env(api_url)
    app = page(PAGE)
    app.get("button_group")[0].set_value("a sweep").run()

    app.selectbox(key="new_job.dataset").select("tiny").run()
    app.text_input(key="new_job.grid.learning_rate").input("0.001, 0.0003")
    app.text_input(key="new_job.grid.batch_size").input("16, 32")
    app.button[0].click().run()

    [success] = app.success
    assert success.value.endswith(": 4 runs.")
    sweep_id = success.value.split()[2].rstrip(":")
    swept = api.get(f"/sweeps/{sweep_id}").json()
    assert sorted((run["spec"]["learning_rate"], run["spec"]["batch_size"]) for run in swept["runs"]) == [
        (0.0003, 16),
        (0.0003, 32),
        (0.001, 16),
        (0.001, 32),
    ]


def test_a_grid_that_is_not_numbers_is_refused(api_url, dashboard_env):
    dashboard_env(api_url)
    app = page(PAGE)
    app.get("button_group")[0].set_value("a sweep").run()

    app.selectbox(key="new_job.dataset").select("tiny").run()
    app.text_input(key="new_job.grid.batch_size").input("16, big")
    app.button[0].click().run()

    assert app.error[0].value == "Check the form — batch_size: '16, big' is not a comma-separated list of whole numbers"


def test_without_the_api_key_nothing_is_queued(api_url, dashboard_env):
    dashboard_env(api_url, api_key=None)
    app = page(PAGE)

    app.selectbox(key="new_job.dataset").select("tiny").run()
    app.button[0].click().run()

    assert app.error[0].value == "The API refused the request: set PADDY_API_KEY for the dashboard to the API's key."
