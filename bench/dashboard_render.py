"""How long each dashboard page takes to render with a big store behind the API.

    python -m bench.dashboard_render                          # 10,000 runs, 1,000,000 epoch documents
    python -m bench.dashboard_render --runs 1000 --epochs 20  # a quick run

Fills a fresh store as bench/api_scale.py does (bench/scale.py: status, trainings and epoch
documents as the recorder writes them), starts the API on it (uvicorn, one worker), then runs
each page through Streamlit's AppTest — the page script as the Streamlit server runs it, with
every API request it makes; not the browser's drawing. A first render starts with empty caches
(st.cache_data cleared); a live-monitor refresh is a rerun after the monitor's cache has expired
(what its fragment does every `refresh_s`). Prints median and max of `--repeat` renders per page
against the goals: first render < 2 s, live refresh < 0.5 s.
"""

import argparse
import os
import statistics
import time
from datetime import timedelta
from pathlib import Path

from bench.scale import START, add_size_options, filled_store, machine
from shared import names
from shared.store import SWEEPS

GOAL_FIRST_RENDER_S = 2.0
GOAL_LIVE_REFRESH_S = 0.5
APP = Path(__file__).resolve().parents[1] / "services" / "dashboard" / "app.py"
API_KEY = "bench-key"


def first_render(page: str, query_params: dict[str, str] | None = None, interact=None) -> float:
    """Seconds for one page's first run with cold caches (and, with `interact`, the run after it)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()
    app = AppTest.from_file(str(APP), default_timeout=120)
    app.switch_page(page)
    for name, value in (query_params or {}).items():
        app.query_params[name] = value
    started = time.perf_counter()
    app.run()
    elapsed = time.perf_counter() - started
    if interact is not None:
        interact(app)
        started = time.perf_counter()
        app.run()
        elapsed = time.perf_counter() - started
    check(app, page)
    return elapsed


def live_refresh() -> float:
    """Seconds for the live monitor's periodic refresh: a rerun once its cached queries expired."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from services.dashboard import api_client

    st.cache_data.clear()
    app = AppTest.from_file(str(APP), default_timeout=120).run()
    check(app, "pages/live_monitor.py")
    time.sleep(api_client.LIVE_TTL_S)
    started = time.perf_counter()
    app.run()
    elapsed = time.perf_counter() - started
    check(app, "pages/live_monitor.py")
    return elapsed


NOTES: set[str] = set()


def check(app, page: str) -> None:
    """A page that raised stops the bench; an API error shown in one part of a page is noted."""
    if app.exception:
        raise SystemExit(f"{page} did not render: {[e.value for e in app.exception]}")
    for error in app.error:
        NOTES.add(f"{page}: {error.value}")


def pick_custom_week(app) -> None:
    app.get("button_group")[0].set_value("custom").run()
    first = START.date() + timedelta(days=20)
    app.date_input(key="time_filter.custom").set_value((first, first + timedelta(days=6)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_size_options(parser)
    parser.add_argument("--repeat", type=int, default=5, help="renders timed per page")
    args = parser.parse_args()

    env = {"PADDY_API_KEY": API_KEY, "PADDY_ENVIRONMENT": "development"}
    with filled_store(args.runs, args.epochs, env) as store:
        db = store.db
        # The filler tags runs with sweep ids; the sweeps themselves, as POST /sweeps stores them.
        sweep_ids = db[names.STATUS].distinct("sweep_id")
        db[SWEEPS].insert_many(
            [{"sweep_id": sweep_id, "created_at": START, "base": {}, "grid": {}} for sweep_id in sweep_ids if sweep_id]
        )
        completed = db[names.STATUS].find_one({"status": "completed", "archived": False}, {"run_id": 1})["run_id"]
        with store.api() as url:
            os.environ.update(PADDY_API_URL=url, PADDY_API_KEY=API_KEY)
            measure(args, completed)


def measure(args, completed_run: str) -> None:
    cases = {
        "Live monitor (first render)": lambda: first_render("pages/live_monitor.py"),
        f"Run detail (a completed run, {args.epochs} epochs)": lambda: first_render(
            "pages/run_detail.py", {"run_id": completed_run}
        ),
        "Compare (defaults: completed, by val accuracy)": lambda: first_render("pages/compare.py"),
        "Time filter (last 7 days: no runs)": lambda: first_render("pages/time_filter.py"),
        "Time filter (a custom week: ~1,000 runs)": lambda: first_render(
            "pages/time_filter.py", interact=pick_custom_week
        ),
        "New job": lambda: first_render("pages/new_job.py"),
        "Predict": lambda: first_render("pages/predict.py"),
    }
    for render in cases.values():  # imports (plotly, pandas, the pages' modules) happen once per server
        render()
    NOTES.clear()
    print(f"\n{machine()}")
    print(
        f"{args.runs:,} runs, {args.runs * args.epochs:,} epoch documents; {args.repeat} renders each "
        "(AppTest, in-process; caches cleared before each first render)\n"
    )
    print("| page | median s | max s | goal | met |")
    print("|---|---:|---:|---|---|")
    for name, render in cases.items():
        seconds = [render() for _ in range(args.repeat)]
        report(name, seconds, GOAL_FIRST_RENDER_S)
    report("Live monitor refresh (cache expired)", [live_refresh() for _ in range(args.repeat)], GOAL_LIVE_REFRESH_S)
    for note in sorted(NOTES):
        print(f"\nnote: {note}")


def report(name: str, seconds: list[float], goal: float) -> None:
    median = statistics.median(seconds)
    print(
        f"| {name} | {median:.3f} | {max(seconds):.3f} | < {goal:g} s | {'yes' if median < goal else 'NO'} |",
        flush=True,
    )


if __name__ == "__main__":
    main()
