"""Optuna for random and tpe sweeps: where a study lives, its sampler and pruner, and the
search space as Optuna distributions. Paddy writes no sampler or pruner of its own.

A study lives in Optuna's journal storage on Redis, beside the job queue: every API, recorder
and trainer may restart and the study's trials, their sampled points and the metrics reported
after each epoch are still there. services/api/sweep_driver.py drives a study; this module
only builds what it needs, also for bench/sweep_efficiency.py.
"""

import hashlib
import types
import warnings
from typing import Any, Literal, Union, get_args, get_origin

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages.journal import JournalRedisBackend, JournalStorage

from shared import names
from shared.schemas.jobs import (
    STUDY_FIELDS,
    JobSpec,
    PrunerName,
    SearchChoices,
    SearchParam,
    SweepMetric,
    SweepStrategy,
)

# Optuna says a word per trial at INFO; Paddy's own log says what matters.
optuna.logging.set_verbosity(optuna.logging.WARNING)

DEFAULT_MAX_RUNS = 20
# JobSpec fields a search may sample: not `epochs` (the pruners' resource and the budget's unit:
# set it in base), not the fields of a study, not the run's label.
UNSEARCHABLE = frozenset({"epochs", "version", *STUDY_FIELDS})
SEARCHABLE = frozenset(JobSpec.model_fields) - UNSEARCHABLE
# The metric per epoch (an `epochs` document's field) and per run (a completed run's summary).
EPOCH_FIELD: dict[str, str] = {"val_accuracy": "val_acc", "val_loss": "val_loss"}
SUMMARY_FIELD: dict[str, str] = {"val_accuracy": "val_accuracy", "val_loss": "best_val_loss"}
# ASHA and Hyperband keep the best third of the runs at each rung (epoch 1, 3, 9, …).
REDUCTION_FACTOR = 3


class SpaceError(ValueError):
    """A search space Optuna cannot sample, or one whose points are no valid job; names the field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def storage(redis_url: str) -> JournalStorage:
    """Every study's journal, in Redis under names.OPTUNA_PREFIX."""
    with warnings.catch_warnings():  # "experimental" since Optuna 3.1; pinned, and tested here
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return JournalStorage(JournalRedisBackend(redis_url, prefix=names.OPTUNA_PREFIX))


def study_name(sweep_id: str) -> str:
    return f"sweep-{sweep_id}"


def direction(metric: SweepMetric) -> Literal["minimize", "maximize"]:
    return "minimize" if metric == "val_loss" else "maximize"


def startup_trials(max_runs: int) -> int:
    """Random trials before TPE models the results: Optuna's 10, fewer for a small search."""
    return max(2, min(10, max_runs // 4))


def sampler(strategy: SweepStrategy, seed: int, max_runs: int) -> optuna.samplers.BaseSampler:
    if strategy == "tpe":
        # constant_liar: runs in flight count as bad results, so parallel runs spread out.
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials(max_runs), constant_liar=True)
    if strategy == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"strategy {strategy!r} does not sample; a grid queues every combination")


def ask(
    study: optuna.Study, strategy: SweepStrategy, seed: int, max_runs: int, space: dict[str, BaseDistribution]
) -> optuna.trial.Trial:
    """The study's next trial. Each trial gets a sampler seeded from the sweep's seed and its
    number: a driver builds its study afresh on every pass, and one sampler seeded alike each
    time would propose the same point again and again. Given the same seed and history, a
    sweep proposes the same trials, however often its driver restarted."""
    number = len(study.get_trials(deepcopy=False))
    study.sampler = sampler(strategy, (seed * 1_000_003 + number) % 2**32, max_runs)
    return study.ask(space)


def pruner(name: PrunerName, epochs: int) -> optuna.pruners.BasePruner:
    """Judges a run after each epoch against the study's other runs at the same epoch."""
    if name == "median":
        # Below the median of the runs before it at the same epoch, once two runs have finished.
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=REDUCTION_FACTOR)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=REDUCTION_FACTOR)
    return optuna.pruners.NopPruner()


def trial_run_id(sweep_id: str, number: int) -> str:
    """The run of trial `number`, the same every time it is asked: a driver that died between
    proposing a trial and queueing its run queues that run, never a second one."""
    return hashlib.sha256(f"{sweep_id}:{number}".encode()).hexdigest()[:12]


def _field_kind(field: str) -> type | None:
    """int or float for a numeric JobSpec field (null allowed or not), else None."""
    annotation = JobSpec.model_fields[field].annotation
    kinds = set(get_args(annotation)) if get_origin(annotation) in (Union, types.UnionType) else {annotation}
    kinds.discard(type(None))
    return int if kinds == {int} else float if kinds == {float} else None


def distribution(field: str, param: SearchParam) -> BaseDistribution:
    if field not in SEARCHABLE:
        why = "set epochs in base: it is the pruner's resource" if field == "epochs" else "it cannot be searched"
        raise SpaceError(field, f"{field}: {why}; searchable fields: {sorted(SEARCHABLE)}")
    if isinstance(param, SearchChoices):
        return CategoricalDistribution(param.choices)
    kind = _field_kind(field)
    if kind is int:
        if not all(isinstance(value, int) for value in (param.low, param.high, param.step or 1)):
            raise SpaceError(field, f"{field} is an integer: low, high and step must be integers")
        return IntDistribution(int(param.low), int(param.high), log=param.log, step=int(param.step or 1))
    if kind is float:
        return FloatDistribution(float(param.low), float(param.high), log=param.log, step=param.step)
    raise SpaceError(field, f'{field} is not a number: give it {{"choices": [...]}} instead of a range')


def distributions(space: dict[str, SearchParam]) -> dict[str, BaseDistribution]:
    found = {}
    for field, param in space.items():
        try:
            found[field] = distribution(field, param)
        except SpaceError:
            raise
        except ValueError as error:  # what Optuna itself refuses
            raise SpaceError(field, f"{field}: {error}") from None
    return found


def check_space(
    base: dict[str, Any], space: dict[str, SearchParam], first_trials: list[dict[str, Any]]
) -> list[JobSpec]:
    """Every edge of the space, and every first trial, must make a valid job on top of base;
    returns those jobs (their datasets and weights files are checked next)."""
    found = distributions(space)
    corners: list[tuple[str, dict[str, Any]]] = []
    for field, dist in found.items():
        if isinstance(dist, CategoricalDistribution):
            corners += [(field, {field: choice}) for choice in dist.choices]
        elif isinstance(dist, IntDistribution | FloatDistribution):
            corners += [(field, {field: dist.low}), (field, {field: dist.high})]
    for number, point in enumerate(first_trials):
        outside = sorted(set(point) - set(found))
        if outside:
            raise SpaceError(outside[0], f"first_trials[{number}] sets {outside}, which the space does not search")
        for field, value in point.items():
            if not _inside(found[field], value):
                raise SpaceError(field, f"first_trials[{number}]: {field}={value!r} is outside the space")
        corners.append((next(iter(point), "first_trials"), point))
    jobs = []
    for field, values in corners:
        try:
            jobs.append(JobSpec.model_validate({**base, **values}))
        except ValueError as error:
            raise SpaceError(field, f"{values} on top of base is no valid job: {_first_message(error)}") from None
    return jobs


def _inside(dist: BaseDistribution, value: Any) -> bool:
    try:
        return dist._contains(dist.to_internal_repr(value))
    except (ValueError, TypeError):
        return False


def _first_message(error: ValueError) -> str:
    errors = getattr(error, "errors", None)
    if callable(errors):
        first = errors()[0]
        return f"{'.'.join(map(str, first['loc'])) or 'base'}: {first['msg']}"
    return str(error)
