"""Sweeps: a random or tpe search's progress against its budget, its trials (pruned ones grey) in
an optimisation history, parallel coordinates and each trial's curve, the importance of each
field, and the trials with links to their runs; a grid sweep or a study (folds, repeats) as its
runs and best run. The sweep comes from the picker or the `sweep_id` query parameter; one that
is still running refreshes by itself."""

import streamlit as st

from services.dashboard import api_client, charts, comparison, sweep_views, ui
from services.dashboard.api_client import ApiError, ApiUnavailable
from services.dashboard.settings import get_settings

SWEEPS_LISTED = 200
PICKED = "sweeps.sweep"
# Where the Run detail page is served (st.navigation names a page's URL after its file): the
# trials table links each run there.
RUN_DETAIL_URL = "run_detail"

settings = get_settings()


def pick_sweep() -> str | None:
    listing = api_client.list_sweeps(settings.api_url, limit=SWEEPS_LISTED)
    by_id = {sweep["sweep_id"]: sweep for sweep in listing["data"]}
    wanted = st.query_params.get("sweep_id")
    if wanted and wanted not in by_id:
        try:  # older than the list holds, or newer than its cached copy
            by_id = {wanted: sweep_views.summary_of(api_client.sweep(settings.api_url, wanted)), **by_id}
        except ApiError as error:
            if error.status_code != 404:
                raise
            st.warning(f"Sweep {wanted} does not exist; pick another.")
            wanted = None
    if not by_id:
        st.info(
            "No sweep yet — queue a grid on the New job page, or a random or tpe search with a pruner "
            "with `POST /sweeps`."
        )
        return None
    options = list(by_id)
    sweep_id = st.selectbox(
        "Sweep (type to search by id, kind, model or dataset)",
        options,
        key=PICKED,
        index=options.index(wanted) if wanted in by_id else 0,
        format_func=lambda sweep_id: sweep_views.sweep_option_label(by_id[sweep_id]),
    )
    st.query_params["sweep_id"] = sweep_id
    return sweep_id


def search_summary(swept: dict) -> None:
    search = swept["search"]
    metric = search["metric"]
    st.subheader(sweep_views.search_header(swept))
    st.caption(f"Searches {sweep_views.space_text(search)}. {sweep_views.search_settings_text(search)}")
    fraction, text = sweep_views.budget_progress(search)
    st.progress(fraction, text=text)
    counts = sweep_views.counts(search)
    best_column, done_column, pruned_column, epochs_column = st.columns(4)
    best_column.metric(
        f"best {sweep_views.metric_label(metric)}",
        sweep_views.format_value(metric, search.get("best_value")),
        help="the best value of the completed trials; a pruned trial's value is from an earlier epoch",
    )
    done_column.metric(
        "trials done",
        f"{sweep_views.trials_done(search)} / {search['max_runs']}",
        help=f"{counts['running']} running" if counts["running"] else "trials that have ended, of max_runs",
    )
    pruned_column.metric("pruned", counts["pruned"], help="trials the pruner stopped early")
    budget = search.get("budget_epochs")
    epochs_column.metric("epochs spent", f"{search['epochs_spent']} / {budget}" if budget else search["epochs_spent"])
    best = sweep_views.best_trial(search)
    if best:
        ui.link_to_run(
            best["run_id"],
            label=f"Best run {best['run_id']} (trial {best['number']}: "
            f"{sweep_views.format_value(metric, best['value'])})",
        )
    if counts["failed"]:
        st.warning(f"{counts['failed']} trial(s) failed or were cancelled; the search went on without them.")


def search_charts(search: dict) -> None:
    metric = search["metric"]
    label, percent = sweep_views.metric_label(metric), sweep_views.is_percent(metric)
    if not search["trials"]:
        st.info("No trial has started yet; the charts appear as trials run.")
        return
    history_column, curves_column = st.columns(2)
    history_column.plotly_chart(
        charts.optimisation_history_figure(sweep_views.history_frame(search), label, percent), key="sweeps.history"
    )
    curves = sweep_views.intermediate_frame(search)
    if curves.empty:
        curves_column.info("No trial has finished an epoch yet.")
    else:
        best = sweep_views.best_trial(search)
        curves_column.plotly_chart(
            charts.trial_curves_figure(curves, label, percent, best["number"] if best else None), key="sweeps.curves"
        )
    frame, axes = sweep_views.parallel_dimensions(search)
    if not frame.empty:
        st.plotly_chart(
            charts.search_parallel_figure(frame, axes, label, percent, metric in sweep_views.MINIMISED),
            key="sweeps.parallel",
        )
    importance = sweep_views.importance_frame(search)
    if importance.empty:
        st.caption("The importance of each field appears once three trials have completed with different values.")
    else:
        st.plotly_chart(charts.importance_figure(importance), key="sweeps.importance")


def trials_table(search: dict) -> None:
    metric = search["metric"]
    table = sweep_views.trials_table(search)
    st.subheader(f"Trials ({len(table)})")
    table.insert(1, "run", RUN_DETAIL_URL + "?run_id=" + table["run_id"])
    percent = sweep_views.is_percent(metric)
    st.dataframe(
        table.drop(columns="run_id"),
        hide_index=True,
        width="stretch",
        key="sweeps.trials",
        column_config={
            "number": st.column_config.NumberColumn("trial", format="%d"),
            "run": st.column_config.LinkColumn(
                "run", display_text=r"run_id=(\w+)", help="opens the run's detail page in a new tab"
            ),
            "state": st.column_config.TextColumn("state"),
            **{
                field: st.column_config.NumberColumn(field.replace("_", " "), format="%.4g")
                for field in sweep_views.search_fields(search)
                if table[field].map(lambda v: isinstance(v, int | float) and not isinstance(v, bool)).all()
            },
            "value": st.column_config.NumberColumn(
                sweep_views.metric_label(metric),
                format="percent" if percent else "%.4f",
                help="the run's summary metric when completed, else the metric after its last epoch",
            ),
            "epochs": st.column_config.NumberColumn("epochs trained"),
        },
    )


def show_search(swept: dict) -> None:
    search_summary(swept)
    search_charts(swept["search"])
    trials_table(swept["search"])


def show_runs(swept: dict) -> None:
    """A grid sweep or a study: its runs, its best run, a study's test metrics with intervals."""
    st.subheader(f"{sweep_views.kind_label(swept['kind'])} · {sweep_views.runs_label(swept['runs'])}")
    if swept.get("best"):
        best = swept["best"]
        metric = swept["metric"]
        score = (best.get("metrics") or {}).get(metric)
        label, percent = comparison.METRICS.get(metric, (metric, False))
        shown = "—" if score is None else (f"{score:.1%}" if percent else f"{score:.4f}")
        ui.link_to_run(
            best["run_id"], label=f"Best run {best['run_id']} ({best['model_name']} {best['version']}): {label} {shown}"
        )
    studied = sweep_views.study_metrics_frame(swept.get("test_metrics"))
    if not studied.empty:
        st.dataframe(
            studied,
            hide_index=True,
            key="sweeps.study",
            column_config={"interval": st.column_config.TextColumn("95 % interval (t)")},
        )
    frame, varying = comparison.sweep_frame(swept)
    metric = swept["metric"]
    if frame[metric].notna().any() and varying and swept["kind"] == "grid":
        label = comparison.METRICS.get(metric, (metric, False))[0]
        st.plotly_chart(charts.parallel_figure(frame, varying, metric, label), key="sweeps.grid_parallel")
    if swept["runs"]:
        st.dataframe(
            comparison.runs_table(swept["runs"]),
            hide_index=True,
            width="stretch",
            column_config=ui.run_columns(),
            column_order=ui.RUN_COLUMN_ORDER,
            key="sweeps.runs",
        )


def show_sweep(sweep_id: str) -> None:
    swept = api_client.sweep(settings.api_url, sweep_id)
    if swept.get("search"):
        show_search(swept)
    else:
        show_runs(swept)


def show_live_sweep(sweep_id: str) -> None:
    """show_sweep in a fragment, which keeps refreshing: an API problem is shown, not raised."""
    try:
        show_sweep(sweep_id)
    except (ApiUnavailable, ApiError) as error:
        ui.show_api_problem(error)


def body() -> None:
    sweep_id = pick_sweep()
    if sweep_id is None:
        return
    if sweep_views.sweep_is_live(api_client.sweep(settings.api_url, sweep_id)):
        # A search still running refreshes on its own, like a run on the Run detail page.
        st.fragment(show_live_sweep, run_every=settings.refresh_s)(sweep_id)
    else:
        show_sweep(sweep_id)  # an API problem goes to ui.api_page, which recovers by itself


st.title("Sweeps")
ui.api_page(body)
