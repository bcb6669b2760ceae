"""infra/demo.py: the demo's jobs are valid jobs on the demo's dataset, `python -m infra.demo`
draws that dataset, and `paddy demo` queues the jobs on a real API (bench/demo_accuracy.py trains
them)."""

import dataclasses

import httpx
import pytest
from PIL import Image
from typer.testing import CliRunner

import infra.demo
from infra.cli import app
from infra.demo import (
    DEMO_DATA,
    DEMO_EPOCHS,
    DEMO_VARIANTS,
    DemoError,
    demo_specs,
    main,
    queue_demo_jobs,
    synthesize_demo_data,
)
from shared.datasets.synth import CLASS_NAMES
from shared.schemas.jobs import JobSpec
from tests.utils.stack import free_port, running_stack

# The demo's dataset, small enough for a test: 3 images per class.
TINY = dataclasses.replace(DEMO_DATA, per_class=3)


def test_demo_specs_are_valid_jobs_on_the_demo_data_that_differ_only_where_compared():
    specs = [JobSpec(**fields) for fields in demo_specs()]
    assert len(specs) == len(DEMO_VARIANTS) == 3
    for spec in specs:
        assert (spec.dataset, spec.epochs, spec.image_size) == (DEMO_DATA.dataset, DEMO_EPOCHS, DEMO_DATA.size)
    # One split for all (its default split_seed): the dashboard compares them image by image.
    assert len({spec.split_seed for spec in specs}) == 1
    assert len({(spec.learning_rate, spec.dropout) for spec in specs}) == 3
    assert len({spec.seed for spec in specs}) == 3
    compared = {"learning_rate", "dropout", "seed"}
    shared = [spec.model_dump(exclude=compared) for spec in specs]
    assert shared == [shared[0]] * 3


def test_demo_specs_name_the_dataset_and_epochs_asked_for():
    assert {(s["dataset"], s["epochs"]) for s in demo_specs("other/leaves", 3)} == {("other/leaves", 3)}


def test_synthesize_demo_data_draws_the_dataset_the_jobs_name(tmp_path):
    assert synthesize_demo_data(tmp_path, TINY) == dict.fromkeys(CLASS_NAMES, 3)
    folder = tmp_path / DEMO_DATA.dataset
    assert sorted(p.name for p in folder.iterdir()) == sorted(CLASS_NAMES)
    with Image.open(folder / CLASS_NAMES[0] / "0000.png") as image:
        assert image.size == (DEMO_DATA.size, DEMO_DATA.size)


def test_main_draws_into_the_data_root_or_says_how_to_call_it(tmp_path, monkeypatch, capsys):
    assert main([]) == 2
    assert "usage: python -m infra.demo DATA_ROOT" in capsys.readouterr().err
    monkeypatch.setattr(infra.demo, "DEMO_DATA", TINY)
    assert main([str(tmp_path)]) == 0
    assert f"drew 9 images of {TINY.size} px" in capsys.readouterr().out
    assert len(list((tmp_path / TINY.dataset).rglob("*.png"))) == 9


def test_paddy_demo_queues_the_demo_data_by_default(monkeypatch):
    asked = []
    monkeypatch.setattr(infra.demo, "queue_demo_jobs", lambda *args: asked.append(args) or [])
    result = CliRunner().invoke(app, ["demo", "--api-key", "k"])
    assert result.exit_code == 0, result.output
    assert asked == [("http://127.0.0.1:8000", DEMO_DATA.dataset, DEMO_EPOCHS, "k")]


def test_paddy_demo_without_an_api_says_so_without_a_traceback():
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["demo", "--api-url", url])
    assert result.exit_code == 1 and result.output.startswith(f"paddy demo: cannot reach the API at {url}")
    assert "is `paddy up` running?" in result.output and "Traceback" not in result.output


@pytest.mark.integration
def test_the_demo_jobs_are_queued_as_they_are_written(tmp_path):
    with running_stack(tmp_path / "stack", ("redis", "mongo", "api")) as stack:
        synthesize_demo_data(stack.state_dir / "data", TINY)
        url = stack.urls()["api"]
        with pytest.raises(DemoError, match="the API refused the key"):
            queue_demo_jobs(url, DEMO_DATA.dataset, DEMO_EPOCHS, "not-the-key")
        queued = queue_demo_jobs(url, DEMO_DATA.dataset, DEMO_EPOCHS, stack.api_key)
        assert [spec for _, spec in queued] == demo_specs()
        for run_id, spec in queued:
            response = httpx.get(f"{url}/jobs/{run_id}", timeout=10)
            assert response.status_code == 200, response.text
            stored = response.json()
            assert stored["status"] == "queued"
            assert stored["spec"] == JobSpec(**spec).model_dump() | {"version": stored["version"]}
