"""Sweep efficiency: does a tpe or random search with ASHA find what a full grid finds, for a
third of the grid's epochs?

    python -m bench.sweep_efficiency --curves /tmp/sweep-curves.json   # trains the grid once, keeps it there
    python -m bench.sweep_efficiency --curves /tmp/sweep-curves.json   # again: replays from the kept curves
    python -m bench.sweep_efficiency --seeds 0 1 2 3 4 --budget-share 0.5

Goal (issue 16): over the search space of a full grid of at least 24 configurations, a tpe or
random search with ASHA reaches within 1 point of the grid's best validation accuracy using at
most 35 % of the grid's total epochs, averaged over 3 sampler seeds.

A tabular benchmark, as HPO papers measure searches: first every configuration of the grid is
trained for real, once, to its last epoch with early stopping off (patience = epochs), through
`paddy train`'s code (train_locally) on synthetic leaves (shared/datasets/synth.py); each
epoch's val_acc is kept, with the run's summary val_accuracy (the best validation-loss epoch's,
services/trainer/training.py), in --curves, one configuration at a time, so an interrupted first
pass resumes. The grid's best is the highest summary val_accuracy, its cost every run's epochs.

Then each search is replayed, per sampler seed, as the sweep driver (services/api/sweep_driver.py)
runs it with parallel 1: an Optuna study (maximize) with the driver's own sampler and pruner
(services/api/search.py: search.ask, search.pruner("asha", epochs)) asks a trial over the
grid's own values (search.distributions of SearchChoices), reports the configuration's val_acc
epoch by epoch and asks should_prune after each epoch but the last (a run that has trained its
last epoch completes: the trainer looks at the prune flag only while it trains); a pruned trial
is told PRUNED after the epochs it finished, a completed one its summary val_accuracy. A new
trial starts only while the epochs spent plus a whole run's still fit the budget, the driver's
rule (_room_for_one), so a search never spends more than the budget; one that proposes a
configuration again trains it again, as the live sweep would.

Why the replay is faithful: a configuration's training is seeded (the base's seed, as in a live
sweep) and never depends on the pruner, so a run pruned after epoch k has seen exactly the first
k values of its curve, and a completed one ends with the summary the grid's run did. What it does
not count: a live run keeps training after the epoch that got it pruned until its trainer sees
the prune flag, within a batch of the driver's next pass (sweep_poll_s, 1 s by default, plus the
recorder's delay); the driver counts only finished epochs, as the replay does, so the budget
holds, but the compute is up to one more epoch per pruned trial, which the bench prints as an
upper bound (each such partial epoch counted whole). Also not replayed: runs in flight at once
(parallel > 1: the pruner then judges a run against fewer finished ones, and TPE's constant liar
spreads proposals), and a driver pass that sees several new epochs of a run at once, which asks
should_prune only after the last.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from itertools import product
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from scipy.stats import spearmanr

from services.api import search
from shared.schemas.jobs import PrunerName, SearchChoices, SearchParam, SweepStrategy

GOAL_POINTS = 1.0  # at most this far below the grid's best val accuracy, in points
GOAL_BUDGET_SHARE = 0.35  # of the grid's total epochs
DATASET = "sweep-synth"
# 4 × 3 × 2 = 24 configurations: the grid, and the space every search samples.
GRID: dict[str, list[Any]] = {
    "learning_rate": [3e-4, 1e-3, 3e-3, 1e-2],
    "dropout": [0.0, 0.3, 0.6],
    "batch_size": [16, 64],
}
# The searches replayed: (strategy, pruner); the goal is the asha ones', tpe without pruning is a reference.
SEARCHES: tuple[tuple[SweepStrategy, PrunerName], ...] = (("tpe", "asha"), ("random", "asha"), ("tpe", "none"))


@dataclass(frozen=True)
class Curve:
    """One configuration trained to its last epoch: val_acc after each epoch, and the summary's
    val_accuracy (the best validation-loss epoch's), the value a completed trial is told."""

    params: dict[str, Any]
    val_acc: list[float]
    val_accuracy: float
    best_epoch: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0


@dataclass(frozen=True)
class Trial:
    params: dict[str, Any]
    epochs: int  # finished epochs
    pruned: bool


@dataclass(frozen=True)
class Search:
    """One replayed search: its trials in order and the best completed trial's value (None: none completed)."""

    trials: list[Trial]
    best: float | None

    @property
    def epochs(self) -> int:
        """Finished epochs of every trial: the driver's count, and the budget's."""
        return sum(trial.epochs for trial in self.trials)

    @property
    def pruned(self) -> int:
        return sum(trial.pruned for trial in self.trials)

    @property
    def distinct(self) -> int:
        return len({_key(trial.params) for trial in self.trials})

    @property
    def repeated_epochs(self) -> int:
        """Epochs of trials that train a configuration an earlier trial trained: the same curve again."""
        seen: set[tuple[tuple[str, Any], ...]] = set()
        epochs = 0
        for trial in self.trials:
            epochs += trial.epochs if _key(trial.params) in seen else 0
            seen.add(_key(trial.params))
        return epochs


def space(grid: dict[str, list[Any]]) -> dict[str, SearchParam]:
    """The search space of the grid: each field's values, as choices."""
    return {field: SearchChoices(choices=values) for field, values in grid.items()}


def configurations(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, as a grid sweep queues them."""
    return [dict(zip(grid, values, strict=True)) for values in product(*grid.values())]


def replay(
    curves: list[Curve],
    grid: dict[str, list[Any]],
    strategy: SweepStrategy,
    pruner: PrunerName,
    seed: int,
    budget_epochs: int,
    max_runs: int,
) -> Search:
    """A sweep over grid's space run as the driver runs it with parallel 1, each trial's epochs
    read from its configuration's curve instead of trained (see the module doc)."""
    table = {_key(curve.params): curve for curve in curves}
    epochs = len(curves[0].val_acc)
    if any(len(curve.val_acc) != epochs for curve in curves):
        raise ValueError("every curve must have the same number of epochs")
    study = optuna.create_study(direction="maximize", pruner=search.pruner(pruner, epochs))
    distributions = search.distributions(space(grid))
    trials: list[Trial] = []
    while len(trials) < max_runs and sum(trial.epochs for trial in trials) + epochs <= budget_epochs:
        asked = search.ask(study, strategy, seed, max_runs, distributions)  # the driver's sampler per trial
        curve = table[_key(asked.params)]
        finished = 0
        for epoch, value in enumerate(curve.val_acc, start=1):
            asked.report(value, epoch)
            finished = epoch
            if epoch < epochs and asked.should_prune():
                break
        pruned = finished < epochs
        if pruned:
            study.tell(asked, state=TrialState.PRUNED)
        else:
            study.tell(asked, curve.val_accuracy)
        trials.append(Trial(dict(asked.params), finished, pruned))
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return Search(trials, study.best_value if completed else None)


def rung_epochs(epochs: int) -> list[int]:
    """The epochs before the last where ASHA judges a run: 1, 3, 9, … (search.REDUCTION_FACTOR)."""
    rungs, rung = [], 1
    while rung < epochs:
        rungs.append(rung)
        rung *= search.REDUCTION_FACTOR
    return rungs


def _key(params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(params.items()))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--curves", type=Path, help="the grid's curves, JSON: read if there (training only what is missing), else kept"
    )
    parser.add_argument("--per-class", type=int, default=600, help="synthetic images per class (a fifth are val)")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=9, help="each run's; ASHA's rungs are epochs 1, 3, 9, …")
    parser.add_argument("--data-seed", type=int, default=0, help="draws the images")
    parser.add_argument("--train-seed", type=int, default=1, help="the base's seed: every configuration's")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="the samplers' seeds")
    parser.add_argument("--budget-share", type=float, default=GOAL_BUDGET_SHARE, help="of the grid's total epochs")
    parser.add_argument(
        "--max-runs", type=int, help="a search's most runs (default: the budget's epochs, so the budget ends it)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--verbose", action="store_true", help="a line per trial")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    print("command: python -m bench.sweep_efficiency " + " ".join(sys.argv[1:]), flush=True)
    setup = {
        "dataset": {"per_class": args.per_class, "image_size": args.image_size, "seed": args.data_seed},
        "base": base_job(args),
        "grid": GRID,
    }
    curves = grid_curves(args, setup)
    epochs = args.epochs
    grid_epochs = len(curves) * epochs
    best = max(curves, key=lambda curve: curve.val_accuracy)
    budget = int(args.budget_share * grid_epochs)
    max_runs = args.max_runs or budget
    print(
        f"grid: {len(curves)} configurations × {epochs} epochs = {grid_epochs} epochs; best val accuracy "
        f"{best.val_accuracy:.4f} ({_shown(best.params)}); configurations within {GOAL_POINTS:g} point of it: "
        f"{sum(curve.val_accuracy >= best.val_accuracy - GOAL_POINTS / 100 for curve in curves)}"
    )
    for rung in rung_epochs(epochs):
        at_rung = [curve.val_acc[rung - 1] for curve in curves]
        print(
            f"ASHA's rung at epoch {rung}: rank correlation (Spearman) of val acc there with the summary val "
            f"accuracy {spearmanr(at_rung, [curve.val_accuracy for curve in curves]).statistic:.2f}; the grid's "
            f"best ranks {1 + sum(value > best.val_acc[rung - 1] for value in at_rung)} of {len(curves)} there"
        )
    print(f"searches: budget {budget} epochs ({args.budget_share:.0%} of the grid's), max_runs {max_runs}")
    met = []
    for strategy, pruner in SEARCHES:
        searches = []
        for seed in args.seeds:
            found = replay(curves, GRID, strategy, pruner, seed, budget, max_runs)
            searches.append(found)
            if args.verbose:
                for number, trial in enumerate(found.trials):
                    state = "pruned" if trial.pruned else "completed"
                    print(f"    seed {seed} trial {number}: {_shown(trial.params)}  {trial.epochs} epochs, {state}")
            print(
                f"{strategy} + {pruner}, seed {seed}: best {_value(found.best)}  epochs {found.epochs}  trials "
                f"{len(found.trials)} ({found.pruned} pruned, {found.distinct} distinct configurations, "
                f"{found.repeated_epochs} epochs on repeats)"
            )
        mean_best = statistics.mean(found.best if found.best is not None else 0.0 for found in searches)
        mean_epochs = statistics.mean(found.epochs for found in searches)
        bound = statistics.mean(found.epochs + found.pruned for found in searches)
        gap = 100 * (best.val_accuracy - mean_best)
        reached = gap <= GOAL_POINTS and mean_epochs <= GOAL_BUDGET_SHARE * grid_epochs
        if pruner == "asha":
            met.append(reached)
        print(
            f"{strategy} + {pruner}, mean of {len(searches)} seeds: best val accuracy {mean_best:.4f} against the "
            f"grid's {best.val_accuracy:.4f} ({gap:.2f} points below); epochs {mean_epochs:.1f} against the grid's "
            f"{grid_epochs}, ratio {mean_epochs / grid_epochs:.3f} (with a partial epoch per pruned trial counted "
            f"whole: {bound:.1f}, {bound / grid_epochs:.3f}); goal {'met' if reached else 'NOT met'}",
            flush=True,
        )
    verdict = "met" if any(met) else "NOT met"
    print(
        f"goal (tpe or random with asha within {GOAL_POINTS:g} point of the grid's best on at most "
        f"{GOAL_BUDGET_SHARE:.0%} of its epochs, mean of {len(args.seeds)} seeds): {verdict}"
    )
    return 0 if any(met) else 1


def base_job(args: argparse.Namespace) -> dict[str, Any]:
    """What every configuration shares: the demo jobs' recipe (infra/demo.py) without early stopping."""
    from infra.demo import DEMO_JOB

    return {
        **DEMO_JOB,
        "dataset": DATASET,
        "image_size": args.image_size,
        "epochs": args.epochs,
        "patience": args.epochs,
        "seed": args.train_seed,
    }


def grid_curves(args: argparse.Namespace, setup: dict[str, Any]) -> list[Curve]:
    """Every configuration's curve: those kept in args.curves, the rest trained now (and kept)."""
    kept: list[Curve] = []
    if args.curves is not None and args.curves.exists():
        stored = json.loads(args.curves.read_text())
        if stored["setup"] != setup:
            raise SystemExit(f"{args.curves} holds curves of another setup: {stored['setup']}; move it or name another")
        kept = [Curve(**curve) for curve in stored["curves"]]
    missing = [params for params in configurations(GRID) if _key(params) not in {_key(c.params) for c in kept}]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {_load()}; grid curves: "
        f"{len(kept)} kept{f' in {args.curves}' if kept else ''}, {len(missing)} to train",
        flush=True,
    )
    if missing:
        kept += train_grid(args, setup, missing, kept)
    order = {_key(params): number for number, params in enumerate(configurations(GRID))}
    curves = sorted(kept, key=lambda curve: order[_key(curve.params)])
    for curve in curves:
        print(
            f"  {_shown(curve.params)}: val acc by epoch {' '.join(f'{value:.3f}' for value in curve.val_acc)}; "
            f"summary {curve.val_accuracy:.4f} (epoch {curve.best_epoch}); trained in {curve.wall_s:.0f} s, "
            f"CPU {curve.cpu_s:.0f} s"
        )
    print(
        f"grid trained in {sum(curve.wall_s for curve in curves) / 60:.1f} min, "
        f"CPU {sum(curve.cpu_s for curve in curves) / 60:.1f} min"
    )
    return curves


def train_grid(
    args: argparse.Namespace, setup: dict[str, Any], missing: list[dict[str, Any]], kept: list[Curve]
) -> list[Curve]:
    """Train each missing configuration to its last epoch, keeping the curves after each one."""
    # Imported here: the replay, and its test, need neither torch nor the trainer.
    import torch

    from services.trainer.local_run import train_locally
    from services.trainer.settings import TrainerSettings
    from shared.datasets.synth import synthesize_dataset
    from shared.schemas.jobs import JobSpec

    torch.set_num_threads(args.threads)
    trained: list[Curve] = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        started = time.perf_counter()
        counts = synthesize_dataset(root / "data" / DATASET, args.per_class, args.image_size, args.data_seed)
        print(
            f"data: {sum(counts.values())} images of {args.image_size} px ({args.per_class} per class, seed "
            f"{args.data_seed}), drawn in {time.perf_counter() - started:.1f} s; torch {torch.__version__} with "
            f"{torch.get_num_threads()} threads",
            flush=True,
        )
        # One artifacts root, as one trainer: the first run audits the dataset, the others reuse it.
        settings = TrainerSettings(
            data_root=root / "data", artifacts_root=root / "artifacts", device="cpu", heatmaps_per_run=0
        )
        for number, params in enumerate(missing, start=1):
            spec = JobSpec.model_validate({**setup["base"], **params})
            val_acc: list[float] = []

            def on_event(event: Any) -> None:
                if event.type == "epoch_finished":
                    val_acc.append(event.val_acc)

            wall, cpu = time.perf_counter(), time.process_time()
            summary = train_locally(f"grid-{uuid.uuid4().hex[:8]}", spec, settings, on_event=on_event)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            curve = Curve(params, val_acc, summary.val_accuracy, summary.best_epoch, round(wall, 1), round(cpu, 1))
            trained.append(curve)
            print(
                f"  trained {number}/{len(missing)} {_shown(params)}: val accuracy {curve.val_accuracy:.4f} "
                f"in {wall:.0f} s, CPU {cpu:.0f} s; load average {_load()}",
                flush=True,
            )
            if args.curves is not None:
                keep_curves(args.curves, setup, kept + trained)
    return trained


def keep_curves(path: Path, setup: dict[str, Any], curves: list[Curve]) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps({"setup": setup, "curves": [asdict(curve) for curve in curves]}, indent=1))
    os.replace(partial, path)


def _shown(params: dict[str, Any]) -> str:
    return ", ".join(f"{field} {value:g}" for field, value in params.items())


def _value(value: float | None) -> str:
    return "none completed" if value is None else f"{value:.4f}"


def _load() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
