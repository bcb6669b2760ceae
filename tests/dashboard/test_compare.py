"""The compare page against a running API with recorded runs (and a sweep of its own)."""

from datetime import UTC, datetime, timedelta

import pytest
from statsmodels.stats.proportion import proportion_confint

from tests.utils.dashboard import (
    RunPublisher,
    axis_titles,
    page,
    plotly_figures,
    statuses,
    table_with,
    trace_values,
    wait_until_shown,
)
from tests.utils.events import paired_rights

pytestmark = pytest.mark.integration
PAGE = "pages/compare.py"


@pytest.fixture(scope="module")
def mobilenets(recorded_runs, api, events) -> list[str]:
    """Two completed mobilenet_v2 runs: one better (test 0.93, lr 0.0003) than the other (0.81)."""
    runs = []
    for test_accuracy, learning_rate, epochs in ((0.81, 0.001, 2), (0.93, 0.0003, 4)):
        run = RunPublisher(events, model_name="mobilenet_v2", epochs=epochs, spec={"learning_rate": learning_rate})
        run.start(at=datetime.now(UTC) - timedelta(minutes=50))
        for epoch in range(1, epochs + 1):
            run.epoch(epoch)
        run.complete(epochs_run=epochs, test_accuracy=test_accuracy)
        runs.append(run.run_id)
    wait_until_shown(api, lambda client: all(statuses(client).get(run_id) == "completed" for run_id in runs))
    return runs


@pytest.fixture(scope="module")
def sweep(recorded_runs, api, events) -> dict:
    """A sweep over two learning rates (POST /sweeps), both runs then trained by a fake trainer."""
    response = api.post(
        "/sweeps",
        json={
            "base": {"model_name": "custom_cnn", "dataset": "tiny", "epochs": 2, "image_size": 64},
            "grid": {"learning_rate": [0.01, 0.0001]},
        },
    )
    assert response.status_code == 202, response.text
    created = response.json()
    for run_id, learning_rate, test_accuracy in zip(created["run_ids"], (0.01, 0.0001), (0.6, 0.7), strict=True):
        run = RunPublisher(events, run_id=run_id, epochs=2, spec={"learning_rate": learning_rate})
        run.start().epoch(1).epoch(2).complete(epochs_run=2, test_accuracy=test_accuracy)
    wait_until_shown(
        api, lambda client: all(statuses(client).get(run_id) == "completed" for run_id in created["run_ids"])
    )
    return created


def test_the_table_lists_completed_runs_best_first_with_the_originals_columns(
    recorded_runs, mobilenets, api_url, dashboard_env
):
    dashboard_env(api_url)

    app = page(PAGE)

    assert app.title[0].value == "Compare runs"
    table = table_with(app, "test_f1_macro").set_index("run_id")
    assert {recorded_runs.completed, *mobilenets} <= set(table.index)
    assert recorded_runs.failed not in table.index and recorded_runs.queued not in table.index  # status filter
    assert table["val_accuracy"].is_monotonic_decreasing  # sorted by the API, best first
    row = table.loc[recorded_runs.completed]
    assert row[["model", "version", "batch_size", "learning_rate", "epochs_run"]].tolist() == [
        "custom_cnn",
        "v1",
        32,
        0.001,
        3,
    ]
    assert row["test_accuracy"] == pytest.approx(0.87) and row["test_f1_macro"] == pytest.approx(0.888)
    assert not row["early_stopped"]
    assert row["duration_minutes"] == pytest.approx(1.5)


def test_filters_by_model_and_minimum_accuracy(recorded_runs, mobilenets, api_url, dashboard_env):
    dashboard_env(api_url)
    app = page(PAGE)

    app.selectbox(key="compare.model").select("mobilenet_v2").run()
    assert set(table_with(app, "test_f1_macro")["run_id"]) == set(mobilenets)

    app.selectbox(key="compare.model").select("any model")
    app.multiselect(key="compare.status").set_value(["failed"]).run()
    assert table_with(app, "test_f1_macro")["run_id"].tolist() == [recorded_runs.failed]

    app.slider(key="compare.min_val").set_value(0.99).run()
    assert app.info[0].value.startswith("No run matches these filters")


def test_sorting_by_another_key_reorders_all_runs(mobilenets, api_url, dashboard_env):
    dashboard_env(api_url)
    app = page(PAGE)

    app.selectbox(key="compare.sort").select("test_accuracy")
    app.toggle(key="compare.descending").set_value(False).run()

    accuracies = table_with(app, "test_f1_macro")["test_accuracy"]
    assert accuracies.is_monotonic_increasing


def test_chosen_runs_curves_are_overlaid_by_epoch(recorded_runs, mobilenets, api_url, dashboard_env):
    dashboard_env(api_url)
    app = page(PAGE)

    app.multiselect(key="compare.overlay").set_value([recorded_runs.completed, *mobilenets]).run()

    figures = plotly_figures(app)
    val_loss = figures["Val loss"]
    curves = {trace["name"].split(" · ")[0]: trace_values(trace["x"]) for trace in val_loss["data"]}
    assert curves == {recorded_runs.completed: [1, 2, 3], mobilenets[0]: [1, 2], mobilenets[1]: [1, 2, 3, 4]}
    assert axis_titles(val_loss) == ("epoch", "val loss")
    assert axis_titles(figures["Val accuracy"]) == ("epoch", "val accuracy")


def test_hyperparameter_chart_and_best_run_per_model(recorded_runs, mobilenets, api_url, dashboard_env):
    dashboard_env(api_url)
    app = page(PAGE)

    app.selectbox(key="compare.metric").select("test_accuracy").run()

    figure = plotly_figures(app)["test accuracy by learning rate"]
    points = {
        trace["name"]: sorted(zip(trace_values(trace["x"]), trace_values(trace["y"]), strict=True))
        for trace in figure["data"]
    }
    assert points["mobilenet_v2"] == [(0.0003, pytest.approx(0.93)), (0.001, pytest.approx(0.81))]
    assert axis_titles(figure) == ("learning rate", "test accuracy")
    assert figure["layout"]["xaxis"]["type"] == "log"
    best = table_with(app, "model", without="status").set_index("model")
    assert best.loc["mobilenet_v2", "run_id"] == mobilenets[1]
    assert best.loc["custom_cnn", "test_accuracy"] >= 0.87


def test_a_sweep_is_drawn_in_parallel_coordinates_with_its_best_run(sweep, api_url, dashboard_env):
    dashboard_env(api_url)
    app = page(PAGE)

    app.text_input(key="compare.sweep").input(sweep["sweep_id"])
    app.selectbox(key="compare.metric").select("test_accuracy").run()

    figure = plotly_figures(app)["Sweep: test accuracy by hyperparameters"]
    dimensions = figure["data"][0]["dimensions"]
    assert [dimension["label"] for dimension in dimensions] == ["learning rate", "test accuracy"]
    assert sorted(trace_values(dimensions[0]["values"])) == [0.0001, 0.01]
    best = next(success.value for success in app.success if success.value.startswith("Best run of the sweep"))
    assert sweep["run_ids"][1] in best


def test_no_completed_run_says_what_to_do(empty_api_url, dashboard_env):
    dashboard_env(empty_api_url)

    app = page(PAGE)

    infos = [info.value for info in app.info]
    assert infos[0].startswith("No run matches these filters")
    assert any(info.startswith("No sweep among these runs") for info in infos)
    assert not app.error


@pytest.fixture(scope="module")
def vggs(recorded_runs, api, events) -> list[str]:
    """Two vgg16 runs tested on one split of 45 images, v2 right on 9 images v1 got wrong and
    wrong on 1 it got right; and a v3 tested on another split."""
    v1, v2 = paired_rights(both_right=30, only_a=1, only_b=9, both_wrong=5)
    runs = []
    for version, right, split_hash in (("v1", v1, "split-tiny"), ("v2", v2, "split-tiny"), ("v3", v2, "split-other")):
        run = RunPublisher(events, model_name="vgg16", version=version, epochs=1, split_hash=split_hash)
        run.start().epoch(1).complete(epochs_run=1, right=right)
        runs.append(run.run_id)
    wait_until_shown(api, lambda client: all(statuses(client).get(run_id) == "completed" for run_id in runs))
    return runs


def test_chosen_runs_show_error_bars_intervals_and_paired_verdicts(vggs, api_url, dashboard_env):
    dashboard_env(api_url)
    app = page(PAGE)
    v1, v2, v3 = vggs

    app.multiselect(key="compare.overlay").set_value(vggs).run()

    figure = plotly_figures(app)["Test accuracy with 95 % intervals"]
    [trace] = figure["data"]
    accuracies = trace_values(trace["y"])
    assert accuracies == pytest.approx([31 / 45, 39 / 45, 39 / 45])
    for correct, accuracy, above, below in zip(
        (31, 39, 39), accuracies, trace_values(trace["error_y"]["array"]), trace_values(trace["error_y"]["arrayminus"])
    ):
        low, high = proportion_confint(correct, 45, method="wilson")
        assert (accuracy - below, accuracy + above) == pytest.approx((low, high))
    assert axis_titles(figure) == ("run", "test accuracy")

    intervals = table_with(app, "interval").set_index("run_id")
    low, high = proportion_confint(39, 45, method="wilson")
    assert intervals.loc[v2, "interval"] == f"±{(high - low) * 50:.1f} pts ({low * 100:.0f}–{high * 100:.0f} %)"
    assert intervals.loc[v2, "test_images"] == 45
    assert "Test split of 45 images: 1 image = 2.2 points." in [caption.value for caption in app.caption]

    [better] = [success.value for success in app.success if success.value.startswith("**")]
    assert better == (
        f"**{v1} · vgg16 v1 vs {v2} · vgg16 v2**: vgg16 v2 is better than vgg16 v1 on this test set (p = 0.0215)"
    )
    unpaired = [caption.value for caption in app.caption if caption.value.startswith(f"**{v1} · vgg16 v1 vs {v3}")]
    assert len(unpaired) == 1 and "cannot be paired: tested on different splits" in unpaired[0]


def test_the_runs_table_gives_each_test_accuracy_its_interval(vggs, api_url, dashboard_env):
    dashboard_env(api_url)

    app = page(PAGE)

    table = table_with(app, "test_interval").set_index("run_id")
    low, high = proportion_confint(31, 45, method="wilson")
    assert table.loc[vggs[0], "test_interval"] == f"±{(high - low) * 50:.1f} pts ({low * 100:.0f}–{high * 100:.0f} %)"
    assert table.loc[vggs[0], "test_images"] == 45


@pytest.fixture(scope="module")
def fold_studies(recorded_runs, api, events) -> list[str]:
    """Two 3-fold studies (POST /jobs with folds) on one split seed: the first right on 40, 36 and
    38 of each fold's 45 test images, the second on 35, 33 and 34."""
    study_ids = []
    for corrects in ((40, 36, 38), (35, 33, 34)):
        response = api.post("/jobs", json={"model_name": "custom_cnn", "dataset": "tiny", "epochs": 1, "folds": 3})
        assert response.status_code == 202, response.text
        created = response.json()
        for fold, (run_id, correct) in enumerate(zip(created["run_ids"], corrects, strict=True)):
            run = RunPublisher(events, run_id=run_id, epochs=1, spec={"folds": 3, "fold": fold}, split_hash=f"f{fold}")
            run.start().epoch(1).complete(epochs_run=1, right=[True] * correct + [False] * (45 - correct))
        study_ids.append(created["sweep_id"])
        wait_until_shown(
            api, lambda client, ids=created["run_ids"]: all(statuses(client).get(i) == "completed" for i in ids)
        )
    return study_ids


def test_two_fold_studies_are_compared_fold_by_fold_in_words(fold_studies, api_url, dashboard_env):
    dashboard_env(api_url)
    app = page(PAGE)
    a, b = fold_studies

    app.text_input(key="compare.studies").input(f"{a}, {b}").run()

    table = table_with(app, "kind").set_index("study")
    assert table.loc[a, "test_accuracy"] == pytest.approx((40 + 36 + 38) / 135)
    assert list(table["runs"]) == [3, 3] and list(table["kind"]) == ["folds", "folds"]
    # By hand: differences 5, 3 and 4 images of 45; their mean 4/45 and its t-interval (2 degrees of freedom).
    mean, half = 4 / 45, 4.302653 * (1 / 45) / 3**0.5
    [verdict] = [success.value for success in app.success if success.value.startswith(f"**{a} vs {b}")]
    assert verdict == (
        f"**{a} vs {b}**: study {a} is better than study {b} by {mean * 100:.1f} points on average over 3 folds "
        f"(95 % interval {(mean - half) * 100:.1f} to {(mean + half) * 100:.1f})"
    )


def test_a_run_split_image_by_image_is_marked_may_leak(recorded_runs, api, events, api_url, dashboard_env):
    run = RunPublisher(events, model_name="resnet50", version="leaky", epochs=1, spec={"split": "random"})
    run.start().epoch(1).complete(epochs_run=1, test_accuracy=0.99)
    wait_until_shown(api, lambda client: statuses(client).get(run.run_id) == "completed")
    dashboard_env(api_url)

    app = page(PAGE)

    table = table_with(app, "test_interval").set_index("run_id")
    low, high = proportion_confint(round(0.99 * 45), 45, method="wilson")
    assert table.loc[run.run_id, "test_interval"] == (
        f"±{(high - low) * 50:.1f} pts ({low * 100:.0f}–{high * 100:.0f} %) · may leak"
    )
    others = table.drop(index=run.run_id)["test_interval"].dropna()
    assert len(others) and not others.str.contains("may leak").any()


def test_two_chosen_runs_show_the_images_only_one_got_right(vggs, api_url, dashboard_env):
    dashboard_env(api_url)
    app = page(PAGE)
    v1, v2, _v3 = vggs

    app.multiselect(key="compare.overlay").set_value(vggs).run()

    assert (app.selectbox(key="compare.run_a").value, app.selectbox(key="compare.run_b").value) == (v1, v2)
    sides = [text.value for text in app.markdown if text.value.startswith("**Only ")]
    assert sides == [f"**Only A ({v1}) right: 1 of 45 images**", f"**Only B ({v2}) right: 9 of 45 images**"]
    captions = [caption for image in app.get("image") for caption in image.captions]
    # Image 30 (class 30 mod 3 = Bacterialblight): v1 right, v2 said the next class.
    assert captions[0] == "true Bacterialblight · A: Bacterialblight 90% · B: Brownspot 90%"
    assert len(captions) == 10 and all(c.startswith("true ") for c in captions)
