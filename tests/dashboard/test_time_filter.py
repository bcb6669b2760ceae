"""The time filter page against a running API with recorded runs."""

from datetime import UTC, date, datetime, timedelta

import pytest

from tests.utils.dashboard import RunPublisher, page, plotly_figures, statuses, table_with, wait_until_shown

pytestmark = pytest.mark.integration
PAGE = "pages/time_filter.py"


@pytest.fixture(scope="module")
def old_run(recorded_runs, api, events) -> RunPublisher:
    """A run completed 20 days ago: outside the last 7 days."""
    run = RunPublisher(events, model_name="vgg16", epochs=2)
    run.start(at=datetime.now(UTC) - timedelta(days=20)).epoch(1).epoch(2).complete(epochs_run=2)
    wait_until_shown(api, lambda client: statuses(client).get(run.run_id) == "completed")
    return run


def test_last_7_days_lists_the_runs_started_in_it_with_their_metrics(recorded_runs, old_run, api_url, dashboard_env):
    dashboard_env(api_url)

    app = page(PAGE)

    assert app.title[0].value == "Time filter"
    assert app.get("button_group")[0].value == "last 7 days"
    table = table_with(app, "val_accuracy").set_index("run_id")
    assert {recorded_runs.completed, recorded_runs.failed, recorded_runs.running} <= set(table.index)
    assert old_run.run_id not in table.index
    assert recorded_runs.queued not in table.index  # not started: no start time
    assert table["start_time"].is_monotonic_decreasing
    assert table.loc[recorded_runs.completed, "val_accuracy"] == pytest.approx(1 - 0.5 / 3)
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["runs started"] == str(len(table))
    chart = plotly_figures(app)["val accuracy by start time"]
    assert chart["layout"]["xaxis"]["title"]["text"] == "start time (UTC)"


def test_a_custom_range_finds_an_older_run(old_run, api_url, dashboard_env):
    dashboard_env(api_url)
    app = page(PAGE)
    started = old_run.started_at.date()

    app.get("button_group")[0].set_value("custom").run()
    app.date_input(key="time_filter.custom").set_value((started - timedelta(days=1), started + timedelta(days=1))).run()

    assert table_with(app, "val_accuracy")["run_id"].tolist() == [old_run.run_id]


def test_a_range_without_runs_says_what_to_do(recorded_runs, api_url, dashboard_env):
    dashboard_env(api_url)
    app = page(PAGE)

    app.get("button_group")[0].set_value("custom").run()
    app.date_input(key="time_filter.custom").set_value((date(2020, 1, 1), date(2020, 1, 31))).run()

    [info] = app.info
    assert info.value == (
        "No run started 2020-01-01 to 2020-01-31 (UTC) — choose a wider range, or queue a job on the New job page."
    )
    assert not app.dataframe
