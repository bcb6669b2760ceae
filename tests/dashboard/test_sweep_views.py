"""The Sweeps page's logic: picker labels, progress against the budget, best so far by the
metric's direction, the trials table, parallel coordinates' axes, importance; and the figures
built from them (pruned trials grey)."""

import copy
import math

import pytest

from services.dashboard import charts, sweep_views

LEARNING_RATES = [0.001, 0.004, 0.002, 0.0005, 0.003]


def trial(number: int, state: str, value: float | None, intermediate: dict[str, float], dropout: float = 0.0) -> dict:
    return {
        "number": number,
        "run_id": f"run{number}",
        "state": state,
        "params": {"learning_rate": LEARNING_RATES[number], "dropout": dropout, "batch_size": 16 * (number + 1)},
        "value": value,
        "epochs": len(intermediate),
        "intermediate": intermediate,
    }


def search(**overrides) -> dict:
    """A tpe search of accuracy, five trials: completed, pruned, completed (the best), failed, running."""
    return {
        "strategy": "tpe",
        "space": {
            "learning_rate": {"low": 0.0005, "high": 0.005, "log": True},
            "dropout": {"choices": [0.0, 0.3]},
            "batch_size": {"low": 16, "high": 80, "step": 16},
        },
        "pruner": "median",
        "metric": "val_accuracy",
        "max_runs": 6,
        "parallel": 2,
        "budget_epochs": None,
        "seed": 7,
        "state": "running",
        "epochs_spent": 8,
        "best_value": 0.9,
        "trials": [
            trial(0, "completed", 0.8, {"1": 0.6, "2": 0.7, "3": 0.8}),
            trial(1, "pruned", 0.4, {"1": 0.4}, dropout=0.3),
            trial(2, "completed", 0.9, {"1": 0.7, "2": 0.85, "3": 0.9}, dropout=0.3),
            trial(3, "failed", None, {}),
            trial(4, "running", 0.95, {"1": 0.95}),
        ],
        "importance": {"learning_rate": 0.2, "dropout": 0.7, "batch_size": 0.1},
        "finished_at": None,
        **overrides,
    }


def loss_search() -> dict:
    """The same trials, searching val_loss: lower is better."""
    found = search(metric="val_loss", best_value=0.3)
    for each, value in zip(found["trials"], [0.5, 0.2, 0.3, None, 0.1], strict=True):
        each["value"] = value
    return found


def sweep(found: dict | None = None, kind: str = "tpe", runs: list[dict] | None = None) -> dict:
    return {
        "sweep_id": "5b0c2e7d91aa",
        "kind": kind,
        "metric": "val_accuracy",
        "count": len(runs or []),
        "runs": runs or [],
        "best": None,
        "test_metrics": None,
        "search": found,
    }


def test_the_picker_names_a_sweep_by_id_kind_model_dataset_state_and_time():
    summary = {
        "sweep_id": "5b0c2e7d91aa",
        "kind": "random",
        "created_at": "2026-03-01T10:04:59.123Z",
        "model_name": "custom_cnn",
        "dataset": "leaves",
        "state": "running",
    }

    assert sweep_views.sweep_option_label(summary) == (
        "5b0c2e7d91aa · random search · custom_cnn on leaves · 🔄 running · 2026-03-01 10:04 UTC"
    )
    grid = {**summary, "kind": "grid", "state": None, "dataset": None}
    assert sweep_views.sweep_option_label(grid) == "5b0c2e7d91aa · grid sweep · custom_cnn · 2026-03-01 10:04 UTC"
    assert sweep_views.sweep_option_label({"sweep_id": "s1", "kind": "folds"}) == "s1 · study (folds)"


def test_a_sweep_read_whole_is_summarised_for_the_picker_from_its_first_run():
    run = {"run_id": "r", "model_name": "vgg16", "created_at": "2026-03-01T10:00:00Z", "spec": {"dataset": "rice"}}

    summary = sweep_views.summary_of(sweep(search(state="finished"), kind="tpe", runs=[run]))

    assert sweep_views.sweep_option_label(summary) == (
        "5b0c2e7d91aa · tpe search · vgg16 on rice · ✅ finished · 2026-03-01 10:00 UTC"
    )


def test_progress_counts_ended_runs_against_max_runs_without_a_budget():
    fraction, text = sweep_views.budget_progress(search())

    assert fraction == pytest.approx(4 / 6)  # completed, pruned, failed; the running one is not done
    assert text == "4 of 6 runs done"


def test_progress_counts_epochs_against_the_budget_and_a_finished_search_is_done():
    assert sweep_views.budget_progress(search(budget_epochs=20)) == (0.4, "8 of 20 epochs of the budget spent")
    # Finished with room left in the budget, less than another run needs: done all the same.
    assert sweep_views.budget_progress(search(budget_epochs=12, state="finished")) == (
        1.0,
        "finished: 8 of 12 epochs of the budget spent",
    )
    overspent = search(budget_epochs=5)
    assert sweep_views.budget_progress(overspent)[0] == 1.0


def test_best_so_far_counts_only_completed_trials_in_the_metrics_direction():
    history = sweep_views.history_frame(search())

    assert history["number"].tolist() == [0, 1, 2, 3, 4]
    # The pruned 0.4 is from epoch 1; the running 0.95 is not final: neither is a best.
    assert history["best"].tolist() == [0.8, 0.8, 0.9, 0.9, 0.9]
    assert math.isnan(history["value"][3]) and history["epochs"].tolist() == [3, 1, 3, 0, 1]

    losses = sweep_views.history_frame(loss_search())
    assert losses["best"].tolist() == [0.5, 0.5, 0.3, 0.3, 0.3]  # lower is better; 0.2 was pruned


def test_best_so_far_is_empty_before_any_trial_completes():
    found = search(trials=[trial(0, "running", 0.5, {"1": 0.5}), trial(1, "pruned", 0.3, {"1": 0.3})])

    assert sweep_views.history_frame(found)["best"].isna().all()
    assert sweep_views.best_trial(found) is None
    assert sweep_views.history_frame(search(trials=[])).empty


def test_the_best_trial_follows_the_metrics_direction():
    assert sweep_views.best_trial(search())["run_id"] == "run2"
    assert sweep_views.best_trial(loss_search())["run_id"] == "run2"
    tied = search()
    tied["trials"][2]["value"] = 0.8
    assert sweep_views.best_trial(tied)["number"] == 0  # the earlier of two equal trials


def test_the_trials_table_has_a_column_per_sampled_field_and_icons_for_states():
    table = sweep_views.trials_table(search())

    assert list(table.columns) == [
        "number",
        "run_id",
        "state",
        "learning_rate",
        "dropout",
        "batch_size",
        "value",
        "epochs",
    ]
    assert table["state"].tolist() == ["✅ completed", "✂️ pruned", "✅ completed", "❌ failed", "🔄 running"]
    assert table["learning_rate"].tolist() == LEARNING_RATES
    assert table["dropout"].tolist() == [0.0, 0.3, 0.3, 0.0, 0.0]
    assert table["batch_size"].tolist() == [16, 32, 48, 64, 80]
    assert table["value"].tolist()[:3] == [0.8, 0.4, 0.9] and math.isnan(table["value"][3])


def test_trials_come_in_number_order_whatever_order_the_api_sent():
    found = search()
    found["trials"].reverse()

    assert sweep_views.trials_table(found)["number"].tolist() == [0, 1, 2, 3, 4]
    assert sweep_views.history_frame(found)["best"].tolist() == [0.8, 0.8, 0.9, 0.9, 0.9]


def test_counts_and_trials_done():
    found = search()

    assert sweep_views.counts(found) == {"running": 1, "completed": 2, "pruned": 1, "failed": 1}
    assert sweep_views.trials_done(found) == 4
    assert sweep_views.counts(search(trials=[])) == {"running": 0, "completed": 0, "pruned": 0, "failed": 0}


def test_parallel_axes_span_the_space_choices_by_position_and_log_ranges_on_log10():
    frame, axes = sweep_views.parallel_dimensions(search())

    # The failed trial has no value and no line.
    assert frame["run_id"].tolist() == ["run0", "run1", "run2", "run4"]
    assert frame["state"].tolist() == ["completed", "pruned", "completed", "running"]
    learning_rate, dropout, batch_size = axes
    assert learning_rate["label"] == "learning rate"
    assert learning_rate["values"] == pytest.approx([-3, math.log10(0.004), math.log10(0.002), math.log10(0.003)])
    assert learning_rate["range"] == pytest.approx([math.log10(0.0005), math.log10(0.005)])
    assert learning_rate["ticktext"] == ["0.0005", "0.001", "0.002", "0.005"]
    assert learning_rate["tickvals"] == pytest.approx([math.log10(v) for v in (0.0005, 0.001, 0.002, 0.005)])
    assert dropout["values"] == [0, 1, 1, 0]
    assert (dropout["tickvals"], dropout["ticktext"], dropout["range"]) == ([0, 1], ["0", "0.3"], [0, 1])
    assert batch_size["values"] == [16, 32, 48, 80] and batch_size["range"] == [16, 80]
    assert "tickvals" not in batch_size


def test_a_categorical_value_outside_the_space_still_gets_a_place_on_its_axis():
    found = search(space={"model_name": {"choices": ["custom_cnn", "vgg16"]}})
    for each, name in zip(found["trials"], ["vgg16", "resnet50", "custom_cnn", "vgg16", "vgg16"], strict=True):
        each["params"] = {"model_name": name}

    _, (axis,) = sweep_views.parallel_dimensions(found)

    assert axis["ticktext"] == ["custom_cnn", "vgg16", "resnet50"]
    assert axis["values"] == [1, 2, 0, 1]


@pytest.mark.parametrize(
    ("low", "high", "ticks"),
    [
        (0.0001, 0.01, [0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01]),
        (0.0005, 0.005, [0.0005, 0.001, 0.002, 0.005]),
        (0.3, 0.4, [0.3, 0.4]),  # no round value inside: the ends
        (3, 60, [5, 10, 20, 50]),
    ],
)
def test_log_ticks_are_round_values_inside_the_range(low, high, ticks):
    assert sweep_views.log_ticks(low, high) == pytest.approx(ticks)


def test_importance_is_sorted_most_important_first():
    frame = sweep_views.importance_frame(search())

    assert frame["field"].tolist() == ["dropout", "learning_rate", "batch_size"]
    assert frame["importance"].tolist() == [0.7, 0.2, 0.1]
    assert sweep_views.importance_frame(search(importance={})).empty


def test_intermediate_values_by_trial_and_epoch():
    frame = sweep_views.intermediate_frame(search())

    assert frame[["number", "epoch", "value"]].values.tolist() == [
        [0, 1, 0.6],
        [0, 2, 0.7],
        [0, 3, 0.8],
        [1, 1, 0.4],
        [2, 1, 0.7],
        [2, 2, 0.85],
        [2, 3, 0.9],
        [4, 1, 0.95],
    ]
    many = search(trials=[trial(0, "completed", 0.9, {str(epoch): epoch / 20 for epoch in (10, 2, 1)})])
    assert sweep_views.intermediate_frame(many)["epoch"].tolist() == [1, 2, 10]  # by number, not as text


def test_values_read_as_percent_for_accuracy_and_as_numbers_for_loss():
    assert sweep_views.format_value("val_accuracy", 0.875) == "87.5%"
    assert sweep_views.format_value("val_loss", 0.41317) == "0.4132"
    assert sweep_views.format_value("val_loss", None) == "—"
    assert sweep_views.metric_label("val_loss") == "val loss" and not sweep_views.is_percent("val_loss")


def test_the_header_and_settings_say_what_the_search_does():
    assert sweep_views.search_header(sweep(search())) == "tpe search · median pruner · 🔄 running"
    assert sweep_views.search_header(sweep(search(pruner="none", state="finished"))) == (
        "tpe search · no pruner · ✅ finished"
    )
    assert sweep_views.space_text(search()) == (
        "learning_rate 0.0005–0.005 (log) · dropout one of 0, 0.3 · batch_size 16–80 (step 16)"
    )
    assert sweep_views.search_settings_text(loss_search() | {"budget_epochs": 40}) == (
        "Optimises val loss (lower is better); at most 6 runs, 2 at a time, within 40 epochs; seed 7."
    )


def test_a_sweep_is_live_while_its_search_runs_or_any_run_has_not_ended():
    assert sweep_views.sweep_is_live(sweep(search()))
    assert not sweep_views.sweep_is_live(sweep(search(state="finished")))
    assert sweep_views.sweep_is_live(sweep(None, "grid", [{"status": "completed"}, {"status": "queued"}]))
    assert not sweep_views.sweep_is_live(sweep(None, "grid", [{"status": "completed"}, {"status": "pruned"}]))


def test_a_studys_runs_and_test_metrics():
    runs = [{"status": "completed"}, {"status": "completed"}, {"status": "in_progress"}]
    assert sweep_views.runs_label(runs) == "3 runs: 2 ✅ completed, 1 🔄 in progress"
    assert sweep_views.runs_label([]) == "0 runs"

    frame = sweep_views.study_metrics_frame(
        {
            "test_accuracy": {"mean": 0.85, "low": 0.8, "high": 0.9, "runs": 3},
            "test_loss": {"mean": 0.41234, "low": None, "high": None, "runs": 1},
        }
    )
    assert frame.values.tolist() == [
        ["test accuracy", "85.0%", "80.0%–90.0%", 3],
        ["test loss", "0.4123", "—", 1],
    ]


# --- the figures built from these -------------------------------------------------------------


def test_the_history_has_a_trace_per_state_pruned_grey_and_a_best_so_far_step_line():
    figure = charts.optimisation_history_figure(sweep_views.history_frame(search()), "val accuracy", True)

    traces = {trace.name: trace for trace in figure.data}
    assert list(traces) == ["completed", "running", "pruned", "best so far"]  # nothing failed has a value
    assert list(traces["completed"].x) == [0, 2] and list(traces["completed"].y) == [0.8, 0.9]
    assert traces["pruned"].marker.color == charts.PRUNED_GREY and list(traces["pruned"].x) == [1]
    assert list(traces["best so far"].y) == [0.8, 0.8, 0.9, 0.9, 0.9]
    assert traces["best so far"].line.shape == "hv"
    assert figure.layout.yaxis.tickformat == ".1%" and figure.layout.xaxis.title.text == "trial"
    assert figure.layout.xaxis.dtick == 1  # a tick per trial, none between two


def test_trials_that_all_scored_the_same_sit_on_a_narrow_axis():
    same = search(trials=[trial(n, "completed", 0.35, {"1": 0.35}) for n in range(3)])

    figure = charts.optimisation_history_figure(sweep_views.history_frame(same), "val accuracy", True)

    assert list(figure.layout.yaxis.range) == pytest.approx([0.34, 0.36])
    spread = charts.optimisation_history_figure(sweep_views.history_frame(search()), "val accuracy", True)
    assert spread.layout.yaxis.range is None  # Plotly's own range


def test_each_trials_curve_is_drawn_pruned_ones_grey_and_under_the_others():
    figure = charts.trial_curves_figure(sweep_views.intermediate_frame(search()), "val accuracy", True)

    assert [trace.name for trace in figure.data] == ["pruned", "completed", "completed", "running"]
    assert figure.data[0].line.color == charts.PRUNED_GREY
    assert [trace.showlegend for trace in figure.data] == [True, True, False, True]
    assert list(figure.data[2].x) == [1, 2, 3] and list(figure.data[2].y) == [0.7, 0.85, 0.9]


def test_the_best_trials_curve_is_drawn_last_in_the_best_so_fars_colour():
    figure = charts.trial_curves_figure(sweep_views.intermediate_frame(search()), "val accuracy", True, best=2)

    assert [trace.name for trace in figure.data] == ["pruned", "completed", "running", "best (trial 2)"]
    assert figure.data[-1].line.color == charts.BEST_COLOUR and list(figure.data[-1].y) == [0.7, 0.85, 0.9]


def test_parallel_coordinates_grey_every_trial_not_completed_and_colour_the_rest_by_value():
    frame, axes = sweep_views.parallel_dimensions(search())

    figure = charts.search_parallel_figure(frame, axes, "val accuracy", True, lower_is_better=False)

    parcoords = figure.data[0]
    # Grey lines first, so coloured ones are drawn over them: pruned run1, running run4, then run0, run2.
    assert list(parcoords.line.color) == pytest.approx([0.0, 0.0, charts.SCORED_FROM, 1.0])
    scale = parcoords.line.colorscale
    assert (
        scale[0] == (0.0, charts.PRUNED_GREY) and scale[-1][0] == 1.0
    )  # Plotly ignores a scale that does not end at 1
    assert [stop for stop, _ in scale] == sorted(stop for stop, _ in scale)
    assert [dimension.label for dimension in parcoords.dimensions] == [
        "learning rate",
        "dropout",
        "batch size",
        "val accuracy",
    ]
    assert list(parcoords.dimensions[1].values) == [1, 0, 0, 1]  # dropout of run1, run4, run0, run2
    assert list(parcoords.dimensions[1].ticktext) == ["0", "0.3"]
    assert list(parcoords.dimensions[3].values) == [0.4, 0.95, 0.8, 0.9]


def test_with_loss_the_lowest_completed_value_gets_the_best_colour():
    frame, _ = sweep_views.parallel_dimensions(loss_search())

    colours = dict(zip(frame["run_id"], charts.trial_colours(frame, lower_is_better=True), strict=True))

    assert colours == pytest.approx({"run0": charts.SCORED_FROM, "run1": 0.0, "run2": 1.0, "run4": 0.0})


def test_importance_bars_put_the_most_important_field_on_top():
    figure = charts.importance_figure(sweep_views.importance_frame(search()))

    bars = figure.data[0]
    assert list(bars.y) == ["dropout", "learning rate", "batch size"] and list(bars.x) == [0.7, 0.2, 0.1]
    assert figure.layout.yaxis.autorange == "reversed" and list(bars.text) == ["70%", "20%", "10%"]


def test_the_views_do_not_change_the_sweep_they_read():
    found = search()
    before = copy.deepcopy(found)

    sweep_views.history_frame(found)
    sweep_views.trials_table(found)
    sweep_views.parallel_dimensions(found)
    sweep_views.intermediate_frame(found)

    assert found == before
