"""The driver of random and tpe sweeps: it asks Optuna for trials and queues their runs, reports
each run's finished epochs to the pruner and stops the runs it prunes, and tells Optuna how
each run ended, until the sweep's max_runs or budget is spent.

It lives in the API, a thread beside the request handlers, because the API is what queues runs
and validates jobs; trainers know nothing of Optuna (a pruned run is stopped by the same flag as
a cancel, with the value names.PRUNE_FLAG_VALUE), and the recorder only records. Each pass reads
everything again from where it is kept: the study from Optuna's journal in Redis, the runs and
their epochs from MongoDB. So an API killed at any point is replaced by the next pass of the
restarted one, which loses no trial and queues none twice: trial n's run id is fixed
(search.trial_run_id), and a run is queued only if MongoDB does not hold it. A Redis lock per
sweep keeps two API processes from advancing one sweep at once.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import optuna
import redis
from fastapi import HTTPException
from kombu.exceptions import OperationalError
from optuna.storages.journal import JournalStorage
from optuna.trial import FrozenTrial, TrialState
from pymongo.errors import PyMongoError

from services.api import search
from services.api.job_queue import JobQueue
from services.api.queueing import queue_run
from shared import names
from shared.periodic import Periodic
from shared.schemas.events import utc_now
from shared.schemas.jobs import JobSpec, SearchChoices, SearchRange
from shared.store import Store

log = logging.getLogger(__name__)

# A pass takes well under a second; a driver killed holding the lock holds its sweep this long.
LOCK_TIMEOUT_S = 20
# What an outage of Redis, MongoDB or the broker raises: the next pass tries again.
OUTAGES = (PyMongoError, redis.RedisError, OperationalError, OSError, HTTPException)
# Trial states as GET /sweeps/{id} names them.
TRIAL_STATES = {
    TrialState.RUNNING: "running",
    TrialState.COMPLETE: "completed",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
}
ENDED_TRIALS = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
# Run statuses that end a trial, and how.
TRIAL_ENDS = {"completed": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "failed": TrialState.FAIL}
TRIAL_ENDS["cancelled"] = TrialState.FAIL  # someone cancelled the run: the trial has no result


@dataclass(frozen=True)
class Services:
    """What a driver pass reads and writes."""

    store: Store
    queue: JobQueue
    events: redis.Redis
    storage: JournalStorage


@dataclass(frozen=True)
class SearchSettings:
    """A sweep document's search settings, as POST /sweeps stored them."""

    sweep_id: str
    strategy: Any
    base: dict[str, Any]
    space: dict[str, Any]
    pruner: Any
    metric: Any
    max_runs: int
    parallel: int
    budget_epochs: int | None
    seed: int

    @classmethod
    def of(cls, sweep: dict[str, Any]) -> "SearchSettings":
        return cls(
            sweep["sweep_id"],
            sweep["kind"],
            sweep["base"],
            sweep["space"],
            sweep["pruner"],
            sweep["metric"],
            sweep["max_runs"],
            sweep["parallel"],
            sweep.get("budget_epochs"),
            sweep["seed"],
        )

    @property
    def epochs(self) -> int:
        """Epochs each run plans: the base's (epochs is never sampled)."""
        return int(self.base.get("epochs", JobSpec.model_fields["epochs"].default))

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        params = {
            field: SearchChoices.model_validate(param) if "choices" in param else SearchRange.model_validate(param)
            for field, param in self.space.items()
        }
        return search.distributions(params)

    def study(self, storage: JournalStorage) -> optuna.Study:
        return optuna.load_study(
            study_name=search.study_name(self.sweep_id),
            storage=storage,
            sampler=search.sampler(self.strategy, self.seed, self.max_runs),
            pruner=search.pruner(self.pruner, self.epochs),
        )


def create_study(settings: SearchSettings, storage: JournalStorage, first_trials: list[dict[str, Any]]) -> None:
    study = optuna.create_study(
        study_name=search.study_name(settings.sweep_id),
        storage=storage,
        direction=search.direction(settings.metric),
        load_if_exists=True,
    )
    for point in first_trials:
        study.enqueue_trial(point)


@contextmanager
def holding(sweep_id: str, services: Services, wait_s: float) -> Iterator[bool]:
    """The sweep's lock, waiting up to wait_s for it (0: not at all); yields whether it is held."""
    lock = services.events.lock(names.SWEEP_LOCK_KEY.format(sweep_id=sweep_id), timeout=LOCK_TIMEOUT_S)
    held = lock.acquire(blocking=wait_s > 0, blocking_timeout=wait_s or None)
    try:
        yield held
    finally:
        if held:
            try:
                lock.release()
            except redis.exceptions.LockError:  # it expired during a very slow pass
                pass


def advance(sweep_id: str, services: Services, wait_s: float = 0) -> dict[str, Any] | None:
    """One pass over one sweep, under its lock (waiting up to wait_s for it); returns the search
    state it stored (None if another driver held the sweep, or it is not a running search)."""
    with holding(sweep_id, services, wait_s) as held:
        sweep = services.store.get_sweep(sweep_id) if held else None
        if sweep is None or sweep.get("state") != "running":
            return None
        state = _advance(SearchSettings.of(sweep), services)
        if state != sweep.get("search"):
            services.store.save_search(sweep_id, state)
        return state


def cancel(sweep_id: str, services: Services, wait_s: float) -> dict[str, Any] | None:
    """Stop a running search for good: its running trials fail (the caller cancels their runs
    next) and no driver advances it again. None if it was not running."""
    with holding(sweep_id, services, wait_s) as held:
        if not held:
            raise redis.exceptions.LockError(f"sweep {sweep_id} stayed held by a driver's pass")
        sweep = services.store.get_sweep(sweep_id)
        if sweep is None or sweep.get("state") != "running":
            return None
        settings = SearchSettings.of(sweep)
        study = settings.study(services.storage)
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            study.tell(trial.number, state=TrialState.FAIL)
        runs = {run["run_id"]: run for run in services.store.runs_of_sweep(sweep_id)}
        state = {**_state(study, settings, runs), "state": "cancelled", "finished_at": utc_now()}
        services.store.save_search(sweep_id, state)
        return state


def _advance(settings: SearchSettings, services: Services) -> dict[str, Any]:
    study = settings.study(services.storage)
    runs = {run["run_id"]: run for run in services.store.runs_of_sweep(settings.sweep_id)}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        _follow(trial, study, settings, services, runs)
    _ask(study, settings, services, runs)
    return _state(study, settings, runs)


def _follow(
    trial: FrozenTrial, study: optuna.Study, settings: SearchSettings, services: Services, runs: dict[str, dict]
) -> None:
    """Queue a trial's run if a driver died before it could; report its new epochs, prune it if
    the pruner says so; tell Optuna once the run has ended."""
    run_id = search.trial_run_id(settings.sweep_id, trial.number)
    run = runs.get(run_id)
    if run is None:
        runs[run_id] = _queue(trial, study, settings, services)
        return
    if run["status"] == "queued" and not trial.user_attrs.get("sent"):
        # Stored, but the driver died before it knew the task was sent: send it (again). A
        # second delivery resumes the run under a newer attempt; it never trains a second run.
        services.queue.send_training(run_id, run["spec"])
        study._storage.set_trial_user_attr(trial._trial_id, "sent", True)
    metric_field = search.EPOCH_FIELD[settings.metric]
    new_epochs = [
        (epoch["epoch"], epoch[metric_field])
        for epoch in services.store.get_epochs(run_id)
        if epoch.get("finished_at") is not None
        and isinstance(epoch.get(metric_field), int | float)
        and epoch["epoch"] not in trial.intermediate_values
    ]
    ended = TRIAL_ENDS.get(run["status"])
    if new_epochs:
        live = optuna.trial.Trial(study, trial._trial_id)
        for epoch, value in new_epochs:
            live.report(float(value), epoch)
        if ended is None and not trial.user_attrs.get("pruned_at") and live.should_prune():
            _prune(run_id, new_epochs[-1][0], trial, study, services)
    if ended is not None:
        _tell(trial, study, run, ended, settings)


def _prune(run_id: str, epoch: int, trial: FrozenTrial, study: optuna.Study, services: Services) -> None:
    """Stop the run within a batch: its trainer watches the same flag as for a cancel."""
    services.events.set(names.CANCEL_KEY.format(run_id=run_id), names.PRUNE_FLAG_VALUE, ex=names.CANCEL_FLAG_TTL_S)
    study._storage.set_trial_user_attr(trial._trial_id, "pruned_at", epoch)
    log.info("sweep trial %d: run %s pruned after epoch %d", trial.number, run_id, epoch)


def _tell(trial: FrozenTrial, study: optuna.Study, run: dict, ended: TrialState, settings: SearchSettings) -> None:
    value = (run.get("metrics") or {}).get(search.SUMMARY_FIELD[settings.metric])
    if not isinstance(value, int | float):
        value = None
        if ended == TrialState.COMPLETE:
            ended = TrialState.FAIL  # completed without the metric: nothing to learn from
    try:
        study.tell(
            trial.number, float(value) if value is not None and ended == TrialState.COMPLETE else None, state=ended
        )
    except ValueError:  # told already, by a driver that died before storing its state
        pass


def _queue(trial: FrozenTrial, study: optuna.Study, settings: SearchSettings, services: Services) -> dict[str, Any]:
    spec = JobSpec.model_validate({**settings.base, **trial.params}).model_dump()
    run_id = search.trial_run_id(settings.sweep_id, trial.number)
    queue_run(services.store, services.queue, services.events, spec, sweep_id=settings.sweep_id, run_id=run_id)
    study._storage.set_trial_user_attr(trial._trial_id, "sent", True)
    log.info("sweep %s trial %d: queued run %s %s", settings.sweep_id, trial.number, run_id, trial.params)
    return services.store.get_run(run_id) or {"run_id": run_id, "status": "queued", "epochs_done": 0}


def _ask(study: optuna.Study, settings: SearchSettings, services: Services, runs: dict[str, dict]) -> None:
    """New trials while fewer than `parallel` run, fewer than max_runs exist and the budget has room."""
    while _room_for_one(study, settings, runs):
        trial = search.ask(study, settings.strategy, settings.seed, settings.max_runs, settings.distributions())
        runs[search.trial_run_id(settings.sweep_id, trial.number)] = _queue(
            study._storage.get_trial(trial._trial_id), study, settings, services
        )


def _room_for_one(study: optuna.Study, settings: SearchSettings, runs: dict[str, dict]) -> bool:
    trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING, *ENDED_TRIALS))
    running = [trial for trial in trials if trial.state == TrialState.RUNNING]
    if len(trials) >= settings.max_runs or len(running) >= settings.parallel:
        return False
    if settings.budget_epochs is None:
        return True
    return _epochs_spent(trials, settings, runs) + _epochs_reserved(running, settings, runs) + settings.epochs <= (
        settings.budget_epochs
    )


def _run_of(trial: FrozenTrial, settings: SearchSettings, runs: dict[str, dict]) -> dict[str, Any]:
    return runs.get(search.trial_run_id(settings.sweep_id, trial.number)) or {}


def _epochs_spent(trials: list[FrozenTrial], settings: SearchSettings, runs: dict[str, dict]) -> int:
    return sum(int(_run_of(trial, settings, runs).get("epochs_done") or 0) for trial in trials)


def _epochs_reserved(running: list[FrozenTrial], settings: SearchSettings, runs: dict[str, dict]) -> int:
    """Epochs the running trials may still train: the budget is never overspent."""
    return sum(max(0, settings.epochs - int(_run_of(t, settings, runs).get("epochs_done") or 0)) for t in running)


def _state(study: optuna.Study, settings: SearchSettings, runs: dict[str, dict]) -> dict[str, Any]:
    """The search as GET /sweeps/{id} shows it (SearchPublic)."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING, *ENDED_TRIALS))
    running = any(trial.state == TrialState.RUNNING for trial in trials)
    finished = not running and not _room_for_one(study, settings, runs)
    completed = [trial for trial in trials if trial.state == TrialState.COMPLETE]
    return {
        "strategy": settings.strategy,
        "space": settings.space,
        "pruner": settings.pruner,
        "metric": settings.metric,
        "max_runs": settings.max_runs,
        "parallel": settings.parallel,
        "budget_epochs": settings.budget_epochs,
        "seed": settings.seed,
        "state": "finished" if finished else "running",
        "epochs_spent": _epochs_spent(trials, settings, runs),
        "best_value": study.best_value if completed else None,
        "trials": [_trial_state(trial, settings, runs) for trial in trials],
        "importance": _importance(study, settings, len(completed)),
        "finished_at": utc_now() if finished else None,
    }


def _trial_state(trial: FrozenTrial, settings: SearchSettings, runs: dict[str, dict]) -> dict[str, Any]:
    values = trial.intermediate_values
    value = trial.value if trial.value is not None else (values[max(values)] if values else None)
    return {
        "number": trial.number,
        "run_id": search.trial_run_id(settings.sweep_id, trial.number),
        "state": TRIAL_STATES[trial.state],
        "params": trial.params,
        "value": value,
        "epochs": int(_run_of(trial, settings, runs).get("epochs_done") or 0),
        "intermediate": {str(step): value for step, value in sorted(values.items())},
    }


def _importance(study: optuna.Study, settings: SearchSettings, completed: int) -> dict[str, float]:
    """Each sampled field's importance over the completed trials; none before three of them."""
    if completed < 3:
        return {}
    if len(settings.space) == 1:
        return {field: 1.0 for field in settings.space}
    try:
        return {field: float(share) for field, share in optuna.importance.get_param_importances(study).items()}
    except (ValueError, RuntimeError, ZeroDivisionError) as error:  # e.g. every trial scored the same
        log.info("sweep %s: no parameter importance yet: %s", settings.sweep_id, error)
        return {}


class SweepDriver(Periodic):
    """Advances every running search every interval_s seconds, from a thread of the API."""

    def __init__(self, connect: Any, interval_s: float):
        super().__init__(self._pass, interval_s, name="sweep-driver", at_once=True)
        self._connect = connect
        self._services: Services | None = None
        self._failing = False

    def _pass(self) -> None:
        try:
            self._services = self._services or self._connect()
            for sweep_id in self._services.store.running_searches():
                self._advance_one(sweep_id, self._services)
            self._failing = False
        except OUTAGES as error:
            if not self._failing:  # said once per outage; the next pass tries again
                log.warning("sweep driver: %s", error)
            self._failing = True

    @staticmethod
    def _advance_one(sweep_id: str, services: Services) -> None:
        """One sweep's pass; a sweep that cannot be advanced (its study gone from Redis, a bug)
        is logged and skipped, never the end of the driver's thread for every other sweep."""
        try:
            advance(sweep_id, services)
        except OUTAGES:
            raise
        except Exception:
            log.exception("sweep %s: the driver's pass failed; trying again next pass", sweep_id)
