"""How many jobs a worker runs at once on its GPU under the memory budget."""

import os
import subprocess
import sys

import pytest

from services.trainer.packing import MAX_JOBS_PER_GPU, jobs_per_gpu
from services.trainer.settings import TrainerSettings


@pytest.mark.parametrize(
    ("budget", "job", "jobs"),
    [
        (0, 4096, 1),  # no budget: one job at a time
        (4096, 4096, 1),
        (8191, 4096, 1),
        (8192, 4096, 2),
        (60_000, 12_000, 5),
        (1000, 4096, 1),  # a job larger than the budget still runs, alone
        (1_000_000, 1, MAX_JOBS_PER_GPU),  # bounded however small the jobs
    ],
)
def test_jobs_that_fit_in_the_budget(budget, job, jobs):
    assert jobs_per_gpu(budget, job) == jobs


def test_a_job_without_memory_is_refused():
    with pytest.raises(ValueError, match="positive"):
        jobs_per_gpu(8192, 0)


def test_the_settings_default_to_one_job_and_refuse_negative_budgets(monkeypatch):
    settings = TrainerSettings()
    assert jobs_per_gpu(settings.gpu_memory_budget_mib, settings.gpu_job_memory_mib) == 1
    monkeypatch.setenv("PADDY_GPU_MEMORY_BUDGET_MIB", "-1")
    with pytest.raises(ValueError, match="gpu_memory_budget_mib"):
        TrainerSettings()
    monkeypatch.setenv("PADDY_GPU_MEMORY_BUDGET_MIB", "40000")
    monkeypatch.setenv("PADDY_GPU_JOB_MEMORY_MIB", "9000")
    settings = TrainerSettings()
    assert jobs_per_gpu(settings.gpu_memory_budget_mib, settings.gpu_job_memory_mib) == 4


def test_the_worker_concurrency_comes_from_the_budget():
    """What a trainer started by compose (no --concurrency) runs: the Celery config, read at start."""
    env = {**os.environ, "PADDY_GPU_MEMORY_BUDGET_MIB": "30000", "PADDY_GPU_JOB_MEMORY_MIB": "10000"}
    code = "from services.trainer import celeryconfig; print(celeryconfig.worker_concurrency)"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3"
