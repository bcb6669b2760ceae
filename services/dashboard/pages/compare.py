"""Compare: a filterable, sortable, paged table of runs; chosen runs' curves overlaid, their test
accuracies with intervals and paired tests, the images two of them disagree on; studies (folds,
seeds) compared fold by fold; a metric against a hyperparameter; a sweep in parallel
coordinates; the best run of each model."""

import math

import streamlit as st

from services.dashboard import api_client, charts, comparison, detail, ui, uncertainty
from services.dashboard.run_views import STATUS_ICONS
from services.dashboard.settings import get_settings
from shared.models import ENSEMBLE
from shared.schemas.jobs import LOWER_IS_BETTER

settings = get_settings()
ANY_MODEL = "any model"
DEFAULT_SORT = "val_accuracy"
# Completed runs the hyperparameter chart plots, at most.
CHART_RUNS = 500


def filters(model_names: list[str]) -> dict:
    status_column, model_column, accuracy_column, sort_column, order_column, size_column = st.columns(
        [3, 2, 2, 2, 1.5, 1], vertical_alignment="bottom"
    )
    statuses = status_column.multiselect("Status", list(STATUS_ICONS), default=["completed"], key="compare.status")
    model = model_column.selectbox("Model", [ANY_MODEL, *model_names], key="compare.model")
    min_val = accuracy_column.slider("Min val accuracy", 0.0, 1.0, 0.0, 0.05, format="%.2f", key="compare.min_val")
    sort_keys = list(comparison.SORT_KEYS)
    sort = sort_column.selectbox(
        "Sort by",
        sort_keys,
        index=sort_keys.index(DEFAULT_SORT),
        key="compare.sort",
        format_func=lambda key: comparison.SORT_KEYS[key],
    )
    descending = order_column.toggle("Descending", value=True, key="compare.descending")
    page_size = size_column.selectbox("Rows", [25, 50, 100, 200], index=1, key="compare.page_size")
    return {
        "status": tuple(statuses),
        "model_name": None if model == ANY_MODEL else model,
        "min_val_accuracy": min_val or None,
        "sort": comparison.sort_param(sort or DEFAULT_SORT, descending),
        "page_size": page_size,
    }


def runs_table(chosen: dict) -> list[dict]:
    query = {name: chosen[name] for name in ("status", "model_name", "min_val_accuracy", "sort")}
    size = chosen["page_size"]
    page = st.session_state.get("compare.page", 1)
    listing = api_client.list_runs(settings.api_url, limit=size, offset=(page - 1) * size, **query)
    if not listing["data"] and page > 1:  # fewer runs match than before: back to the first page
        page = st.session_state["compare.page"] = 1
        listing = api_client.list_runs(settings.api_url, limit=size, **query)
    if not listing["data"]:
        st.info("No run matches these filters — widen them (status, model, minimum accuracy).")
        return []
    start = (page - 1) * size
    st.dataframe(
        comparison.runs_table(listing["data"]),
        hide_index=True,
        width="stretch",
        column_config=ui.run_columns(),
        column_order=ui.RUN_COLUMN_ORDER,
        key="compare.table",
    )
    pages = max(math.ceil(listing["count"] / size), 1)
    caption, pager = st.columns([4, 1])
    caption.caption(
        f"Runs {start + 1}–{start + len(listing['data'])} of {listing['count']} matching; "
        "click a column header to sort this page, or use Sort by for all runs."
    )
    if pages > 1:
        pager.number_input(f"Page (of {pages})", 1, pages, key="compare.page")
    return listing["data"]


def overlay(page_runs: list[dict]) -> list[str]:
    st.subheader("Curves of chosen runs")
    labels = {run["run_id"]: f"{run['run_id']} · {run['model_name']} {run['version']}" for run in page_runs}
    default = [run["run_id"] for run in page_runs if run["status"] == "completed"][:3]
    chosen = st.multiselect(
        "Runs to overlay (2–20)",
        list(labels),
        default=default,
        max_selections=20,
        format_func=lambda run_id: labels[run_id],
        key="compare.overlay",
    )
    if len(chosen) < 2:
        st.info("Choose at least two runs to overlay their curves.")
        return []
    frame = comparison.overlay_frame(api_client.compare(settings.api_url, tuple(chosen)))
    if frame.empty:
        st.info("None of these runs has finished an epoch yet.")
        return chosen
    columns = st.columns(2)
    for index, column in enumerate(("val_loss", "val_acc", "train_loss", "train_acc")):
        columns[index % 2].plotly_chart(charts.overlay_figure(frame, column), key=f"compare.overlay.{column}")
    return chosen


def significance(chosen: list[str]) -> None:
    """The chosen runs' test accuracies with their intervals, and each pair tested image by image."""
    st.subheader("Is the difference real?")
    compared = api_client.compare(settings.api_url, tuple(chosen))
    frame = uncertainty.test_accuracy_frame(compared["runs"])
    if frame.empty:
        st.info("None of the chosen runs has been evaluated on its test split yet.")
        return
    chart, table = st.columns([3, 2])
    chart.plotly_chart(charts.test_accuracy_figure(frame), key="compare.test_accuracy")
    table.dataframe(
        frame[["run_id", "test_accuracy", "interval", "test_images"]],
        hide_index=True,
        width="stretch",
        key="compare.intervals",
        column_config={
            "run_id": st.column_config.TextColumn("run id"),
            "test_accuracy": st.column_config.NumberColumn("test acc", format="percent"),
            "interval": st.column_config.TextColumn("± (95 %)"),
            "test_images": st.column_config.NumberColumn("test images"),
        },
    )
    for note in uncertainty.few_images_notes(compared["runs"]):
        table.caption(note)
    for runs, verdict, significant in uncertainty.pair_verdicts(compared):
        show_verdict(f"**{runs}**: {verdict}", significant)


def show_verdict(line: str, significant: bool | None) -> None:
    """A paired test's sentence: green when one side is better, plain when not, small when the
    two could not be paired (the sentence says why)."""
    if significant:
        st.success(line)
    elif significant is False:
        st.info(line)
    else:
        st.caption(line)


# Images run against run shows on each side, at most, in rows of this many.
DIFFERING_SHOWN, DIFFERING_ROW = 12, 3


def run_against_run(chosen: list[str]) -> None:
    """Two of the chosen runs side by side: the test images one got right and the other wrong."""
    st.subheader("Where two runs disagree")
    column_a, column_b = st.columns(2)
    run_a = column_a.selectbox("Run A", chosen, index=0, key="compare.run_a")
    run_b = column_b.selectbox("Run B", chosen, index=1, key="compare.run_b")
    if not run_a or not run_b or run_a == run_b:
        st.info("Choose two different runs.")
        return
    found = api_client.run_against_run(settings.api_url, run_a, run_b)
    sides = (
        (column_a, "A", run_a, found["only_a_right"]),
        (column_b, "B", run_b, found["only_b_right"]),
    )
    for column, label, run_id, images in sides:
        with column:
            st.markdown(f"**Only {label} ({run_id}) right: {len(images)} of {found['images']} images**")
            shown = images[:DIFFERING_SHOWN]
            for first in range(0, len(shown), DIFFERING_ROW):
                row = shown[first : first + DIFFERING_ROW]
                for cell, image in zip(st.columns(DIFFERING_ROW), row, strict=False):
                    ui.thumbnail(cell, found["dataset"], image["file"], detail.verdicts_caption(image, "A", "B"))
            if len(images) > len(shown):
                st.caption(f"the {len(shown)} the other run was surest of; {len(images) - len(shown)} more")


def studies() -> None:
    """Studies of folds or seeds side by side, each pair's difference fold by fold."""
    st.subheader("Studies: folds and seeds")
    typed = st.text_input(
        "Study ids (comma-separated)",
        key="compare.studies",
        help="the sweep_id POST /jobs answered for a job with folds or repeats",
    )
    ids = tuple(dict.fromkeys(part.strip() for part in typed.split(",") if part.strip()))
    if len(ids) < 2:
        st.info(
            "Give two or more study ids to compare them fold by fold (or seed by seed): queue each model as "
            "a job with folds or repeats on the New job page or with POST /jobs."
        )
        return
    compared = api_client.compare_studies(settings.api_url, ids)
    st.dataframe(
        uncertainty.studies_frame(compared),
        hide_index=True,
        width="stretch",
        key="compare.study_table",
        column_config={
            "test_accuracy": st.column_config.NumberColumn("mean test acc", format="percent"),
            "interval": st.column_config.TextColumn("95 % interval (t)"),
        },
    )
    for pair in compared["pairs"]:
        show_verdict(f"**{pair['study_a']} vs {pair['study_b']}**: {pair['sentence']}", pair.get("significant"))


def hyperparameters(chosen: dict) -> str:
    st.subheader("Hyperparameter vs accuracy")
    parameter_column, metric_column = st.columns(2)
    parameter = parameter_column.selectbox(
        "Hyperparameter",
        comparison.HYPERPARAMETERS,
        key="compare.parameter",
        format_func=lambda name: name.replace("_", " "),
    )
    metric = metric_column.selectbox(
        "Metric", list(comparison.METRICS), key="compare.metric", format_func=lambda name: comparison.METRICS[name][0]
    )
    completed = api_client.completed_runs(
        settings.api_url,
        CHART_RUNS,
        model_name=chosen["model_name"],
        min_val_accuracy=chosen["min_val_accuracy"],
        sort=f"-{metric}",
    )
    frame = comparison.hyperparameter_frame(completed["data"], parameter, metric)
    if frame.empty:
        st.info("No completed run has this metric yet.")
        return metric
    label, percent = comparison.METRICS[metric]
    st.plotly_chart(
        charts.hyperparameter_figure(frame, parameter, metric, label, percent), key="compare.hyperparameter"
    )
    return metric


def sweeps(page_runs: list[dict], metric: str) -> None:
    st.subheader("Sweep")
    known = comparison.sweep_ids(page_runs)
    typed = st.text_input(
        "Sweep id",
        value=known[0] if known else "",
        key="compare.sweep",
        help="the sweep_id POST /sweeps answered; runs of a sweep show it in the table",
    )
    if not typed.strip():
        st.info("No sweep among these runs — queue one on the New job page (a sweep), then pick it here.")
        return
    swept = api_client.sweep(settings.api_url, typed.strip(), metric)
    frame, varying = comparison.sweep_frame(swept)
    label = comparison.METRICS[metric][0]
    done = frame[metric].notna().sum()
    st.caption(f"{swept['count']} runs, {done} with {label}; varying {', '.join(varying) or 'nothing'}.")
    if done and varying:
        st.plotly_chart(charts.parallel_figure(frame, varying, metric, label), key="compare.parallel")
    elif not done:
        st.info("No run of this sweep has completed yet; the chart appears as they complete.")
    if swept.get("best"):
        best = swept["best"]
        score = (best.get("metrics") or {}).get(metric)
        shown = "—" if score is None else (f"{score:.1%}" if comparison.METRICS[metric][1] else f"{score:.4f}")
        st.success(f"Best run of the sweep: {best['run_id']} ({best['model_name']} {best['version']}), {label} {shown}")
        ui.link_to_run(best["run_id"])


def best_per_model(model_names: list[str], metric: str) -> None:
    st.subheader("Best run per model")
    best = {}
    for model in model_names:  # one query per model, not per run
        listing = api_client.completed_runs(
            settings.api_url, 1, model_name=model, sort=comparison.sort_param(metric, metric not in LOWER_IS_BETTER)
        )
        best[model] = listing["data"][0] if listing["data"] else None
    frame = comparison.best_per_model(best, metric)
    if frame.empty:
        st.info("No model has a completed run yet.")
        return
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        key="compare.best",
        column_config={
            metric: st.column_config.NumberColumn(
                comparison.METRICS[metric][0], format="percent" if comparison.METRICS[metric][1] else "%.4f"
            ),
            "test_accuracy": st.column_config.NumberColumn("test acc", format="percent"),
            "run_id": st.column_config.TextColumn("run id"),
            "epochs_run": st.column_config.NumberColumn("epochs run"),
        },
    )


def body() -> None:
    model_names = [model["name"] for model in api_client.models(settings.api_url)] + [ENSEMBLE]
    chosen = filters(model_names)
    page_runs = ui.section(runs_table, chosen) or []
    chosen_runs = ui.section(overlay, page_runs) if page_runs else []
    if chosen_runs:
        ui.section(significance, chosen_runs)
        ui.section(run_against_run, chosen_runs)
    ui.section(studies)
    metric = ui.section(hyperparameters, chosen) or st.session_state.get("compare.metric", "val_accuracy")
    ui.section(sweeps, page_runs, metric)
    ui.section(best_per_model, model_names, metric)


st.title("Compare runs")
ui.api_page(body)
