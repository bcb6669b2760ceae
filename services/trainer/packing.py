"""Several small jobs on one GPU: how many a worker runs at once under its memory budget.

A worker's pool processes each run one job, so packing is the worker's Celery concurrency,
fixed when it starts (celeryconfig.worker_concurrency): as many jobs as fit in
PADDY_GPU_MEMORY_BUDGET_MIB at PADDY_GPU_JOB_MEMORY_MIB each. The budget is a plan, not a
fence: nothing stops one job from using more than its share, so the job size must be the most
the worker's jobs really use (the live monitor shows each run's GPU memory).
"""

# Above this many jobs a GPU spends more time switching between them than it gains.
MAX_JOBS_PER_GPU = 8


def jobs_per_gpu(budget_mib: int, job_mib: int, max_jobs: int = MAX_JOBS_PER_GPU) -> int:
    """How many jobs of job_mib run together within budget_mib: at least one (no budget, or a
    job larger than the budget, runs alone), at most max_jobs."""
    if job_mib <= 0:
        raise ValueError(f"job memory must be positive, got {job_mib} MiB")
    if budget_mib <= 0:
        return 1
    return max(1, min(max_jobs, budget_mib // job_mib))
