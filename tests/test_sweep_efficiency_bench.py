"""The replay of bench/sweep_efficiency.py on a hand-made table of curves: no training."""

import json
from typing import Any

import pytest

from bench.sweep_efficiency import Curve, configurations, keep_curves, replay

EPOCHS = 9
GRID: dict[str, list[Any]] = {"learning_rate": [1e-4, 1e-3, 1e-2], "dropout": [0.0, 0.5], "batch_size": [16, 64]}
BEST = {"learning_rate": 1e-3, "dropout": 0.5, "batch_size": 16}


def curve_of(params: dict) -> Curve:
    """Rising curves, each configuration at its own height; BEST well above every other one."""
    height = 0.9 if params == BEST else 0.3 + 0.04 * configurations(GRID).index(params)
    values = [round(height * (0.6 + 0.05 * epoch), 4) for epoch in range(EPOCHS)]
    return Curve(params, values, max(values))


CURVES = [curve_of(params) for params in configurations(GRID)]
GRID_EPOCHS = len(CURVES) * EPOCHS


@pytest.mark.parametrize("strategy", ["tpe", "random"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_asha_prunes_at_its_rungs_and_counts_the_pruned_epochs(strategy, seed):
    found = replay(CURVES, GRID, strategy, "asha", seed, budget_epochs=60, max_runs=60)

    assert found.pruned > 0
    assert {trial.epochs for trial in found.trials if trial.pruned} <= {1, 3}  # rungs at epochs 1 and 3
    assert all(trial.epochs == EPOCHS for trial in found.trials if not trial.pruned)
    assert found.epochs == sum(trial.epochs for trial in found.trials)
    assert found.epochs < EPOCHS * len(found.trials)


@pytest.mark.parametrize("strategy", ["tpe", "random"])
@pytest.mark.parametrize("pruner", ["asha", "none"])
@pytest.mark.parametrize("budget", [9, 20, 45, 75])
def test_the_budget_is_never_overspent_and_ends_the_search_only_when_a_run_no_longer_fits(strategy, pruner, budget):
    found = replay(CURVES, GRID, strategy, pruner, 0, budget_epochs=budget, max_runs=1000)

    assert found.epochs <= budget
    assert found.epochs + EPOCHS > budget  # the driver's rule: a new run needs room for all its epochs


def test_without_pruning_every_run_trains_every_epoch():
    found = replay(CURVES, GRID, "tpe", "none", 0, budget_epochs=75, max_runs=1000)

    assert len(found.trials) == 75 // EPOCHS
    assert found.pruned == 0
    assert found.epochs == 75 // EPOCHS * EPOCHS


def test_max_runs_ends_a_search_before_its_budget():
    found = replay(CURVES, GRID, "random", "asha", 0, budget_epochs=GRID_EPOCHS, max_runs=5)

    assert len(found.trials) == 5


@pytest.mark.parametrize("strategy", ["tpe", "random"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_clearly_best_configuration_is_found_and_told_its_summary_value(strategy, seed):
    # Room for about four times the grid's trials: a search may propose a configuration again.
    found = replay(CURVES, GRID, strategy, "asha", seed, budget_epochs=4 * GRID_EPOCHS, max_runs=1000)

    assert found.best == curve_of(BEST).val_accuracy
    assert any(trial.params == BEST and not trial.pruned for trial in found.trials)


def test_a_completed_trial_is_told_the_summary_value_not_its_last_epoch():
    summary_below_last = [Curve(curve.params, curve.val_acc, curve.val_acc[0]) for curve in CURVES]

    found = replay(summary_below_last, GRID, "random", "none", 0, budget_epochs=5 * GRID_EPOCHS, max_runs=1000)

    assert found.distinct == len(CURVES)
    assert found.best == max(curve.val_acc[0] for curve in CURVES)


def test_kept_curves_read_back_as_they_were(tmp_path):
    path = tmp_path / "curves.json"
    setup = {"grid": GRID, "base": {"epochs": EPOCHS}}

    keep_curves(path, setup, CURVES)

    stored = json.loads(path.read_text())
    assert stored["setup"] == setup
    assert [Curve(**curve) for curve in stored["curves"]] == CURVES
    assert not path.with_name(path.name + ".partial").exists()
