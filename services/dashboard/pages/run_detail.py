"""Run detail: one run's settings, results, curves, confusion matrix (its cells open the gallery of
their test images) and epochs; cancel, retry, checkpoint download; once completed, its registry
aliases (promote, demote), ONNX export and model card. The run comes from the picker or the `run_id` query parameter."""

import streamlit as st

from services.dashboard import api_client, charts, detail, export_views, registry_views, run_views, ui, uncertainty
from services.dashboard.api_client import ApiError, ApiUnavailable
from services.dashboard.settings import get_settings

RUNS_LISTED = 500
PICKED = "run_detail.run"
# The gallery: images a page, in rows of this many.
GALLERY_PAGE, GALLERY_ROW = 24, 6

settings = get_settings()


def pick_run() -> str | None:
    listing = api_client.list_runs(settings.api_url, limit=RUNS_LISTED)
    by_id = {run["run_id"]: run for run in listing["data"]}
    wanted = st.query_params.get("run_id")
    if wanted and wanted not in by_id:
        try:  # an older run than the list holds, or an archived one
            by_id = {wanted: api_client.get_run(settings.api_url, wanted), **by_id}
        except ApiError as error:
            if error.status_code != 404:
                raise
            st.warning(f"Run {wanted} does not exist; pick another.")
            wanted = None
    if not by_id:
        ui.no_runs_yet()
        return None
    options = list(by_id)
    run_id = st.selectbox(
        "Run (type to search by id, model or version)",
        options,
        key=PICKED,
        index=options.index(wanted) if wanted in by_id else 0,
        format_func=lambda run_id: run_views.run_option_label(by_id[run_id]),
    )
    st.query_params["run_id"] = run_id
    return run_id


def actions(run: dict) -> None:
    row = st.container(horizontal=True)
    cancel = retry = download = row
    if detail.can_cancel(run) and cancel.button("Cancel run", icon="🛑", key="run_detail.cancel"):
        try:
            api_client.cancel_run(settings.api_url, run["run_id"])
            api_client.get_run.clear()
            st.success("Cancel requested: a running job stops within one batch.")
        except (ApiUnavailable, ApiError) as error:
            ui.show_write_problem(error)
    if detail.can_retry(run) and retry.button("Retry", icon="🔁", key="run_detail.retry"):
        try:
            created = api_client.retry_run(settings.api_url, run["run_id"])
            st.session_state["run_detail.retried"] = created
        except (ApiUnavailable, ApiError) as error:
            ui.show_write_problem(error)
    if detail.has_checkpoint(run):
        download.download_button(
            "Best checkpoint",
            icon="💾",
            file_name=f"{run['run_id']}-best.pt",
            mime="application/octet-stream",
            on_click="ignore",
            key="run_detail.checkpoint",
            data=lambda: api_client.checkpoint(settings.api_url, run["run_id"]),
        )
    retried = st.session_state.get("run_detail.retried")
    if retried:
        st.success(f"Queued run {retried['run_id']} ({retried['version']}) with the same spec.")
        ui.link_to_run(retried["run_id"])


def header(run: dict) -> None:
    st.subheader(f"{run['model_name']} {run['version']} · {run_views.status_label(run['status'])}")
    if run.get("error"):
        st.error(run["error"])
    if run["status"] == "lost":
        st.warning("This run stopped sending heartbeats; retry it to start again from its last checkpoint.")
    if run.get("retry_of"):
        ui.link_to_run(run["retry_of"], label=f"Retry of run {run['retry_of']}")


def results(run: dict) -> None:
    settings_column, metrics_column = st.columns([1, 1])
    table = detail.settings_table(run)
    # Tall enough for every row: a settings table that scrolls hides the last ones.
    settings_column.dataframe(
        table, hide_index=True, width="stretch", height=35 * (len(table) + 1) + 3, key="run_detail.settings"
    )
    values = detail.result_metrics(run)
    test_note = uncertainty.test_accuracy_note(run)
    for row in (("train accuracy", "val accuracy", "test accuracy"), ("test F1 (macro)", "best val loss", "duration")):
        for column, label in zip(metrics_column.columns(3), row, strict=True):
            column.metric(label, values[label], help=test_note if label == "test accuracy" else None)
    if test_note:
        metrics_column.caption(test_note)
    if values["start (UTC)"] == "—":
        metrics_column.caption("Not started yet.")
    else:
        metrics_column.caption(
            f"Started {values['start (UTC)']} UTC"
            + ("." if values["end (UTC)"] == "—" else f", ended {values['end (UTC)']} UTC.")
        )


def curves(run: dict) -> None:
    epochs = api_client.run_epochs(settings.api_url, run["run_id"])
    finished = run_views.finished_epochs(epochs)
    if finished.empty:
        st.info("No epoch has finished yet; the curves appear as epochs finish.")
        return
    loss, accuracy = st.columns(2)
    loss.plotly_chart(charts.curves_figure(finished, "loss"), key="run_detail.loss")
    accuracy.plotly_chart(charts.curves_figure(finished, "accuracy"), key="run_detail.accuracy")
    frame = detail.epochs_frame(epochs)
    timed = frame.dropna(subset=["epoch_time_sec"])
    if not timed.empty:
        st.plotly_chart(charts.epoch_time_figure(timed), key="run_detail.epoch_time")
    with st.expander(f"Epochs ({len(frame)})"):
        st.dataframe(
            frame,
            hide_index=True,
            width="stretch",
            key="run_detail.epochs",
            column_config={
                "train_acc": st.column_config.NumberColumn("train acc", format="percent"),
                "val_acc": st.column_config.NumberColumn("val acc", format="percent"),
                "epoch_time_sec": st.column_config.NumberColumn("epoch time (s)", format="%.1f"),
            },
        )


def evaluation(run: dict) -> None:
    summary = run.get("summary") or {}
    if not summary.get("confusion_matrix"):
        st.info(
            "The confusion matrix and per-class scores appear once the run has completed "
            "and been evaluated on its test split."
        )
        return
    matrix, per_class = st.columns(2)
    matrix.plotly_chart(
        charts.confusion_figure(summary["confusion_matrix"], summary["class_names"]), key="run_detail.confusion"
    )
    with matrix:
        confusion_cells(summary["confusion_matrix"], summary["class_names"])
    scores = detail.per_class_frame(summary)
    per_class.plotly_chart(charts.per_class_figure(scores), key="run_detail.per_class")
    st.dataframe(
        scores,
        hide_index=True,
        width="stretch",
        key="run_detail.per_class_table",
        column_config={
            name: st.column_config.NumberColumn(name, format="percent") for name in ("precision", "recall", "f1")
        },
    )


def open_cell(true_class: str, predicted_class: str) -> None:
    """A confusion-matrix cell clicked: the gallery shows that cell's images."""
    st.session_state.update(
        {
            "gallery.true": true_class,
            "gallery.predicted": predicted_class,
            "gallery.which": "all",
            "gallery.page": 1,
        }
    )


def confusion_cells(matrix: list[list[int]], class_names: list[str]) -> None:
    """The confusion matrix as buttons, rows the true class: a click opens the cell's images."""
    st.caption("Click a cell to see its images (rows: true class, columns: predicted).")
    for true_index, row in enumerate(matrix):
        columns = st.columns([2] + [1] * len(row))
        columns[0].markdown(f"**{class_names[true_index]}**")
        for predicted_index, count in enumerate(row):
            columns[predicted_index + 1].button(
                str(count),
                key=f"run_detail.cell.{true_index}.{predicted_index}",
                help=f"true {class_names[true_index]}, predicted {class_names[predicted_index]}",
                type="primary" if true_index == predicted_index else "secondary",
                disabled=count == 0,
                on_click=open_cell,
                args=(class_names[true_index], class_names[predicted_index]),
                width="stretch",
            )


def gallery(run: dict) -> None:
    """The run's test images with what it predicted, filtered by cell, class or right / wrong."""
    st.subheader("Test images")
    class_names = (run.get("summary") or {}).get("class_names") or run.get("class_names") or []
    dataset = (run.get("spec") or {}).get("dataset")
    if not run.get("test_images") or not dataset:
        st.info("The test images appear once the run has been evaluated on its test split.")
        return
    true_column, predicted_column, which_column, order_column = st.columns(4)
    choices = [detail.ANY_CLASS, *class_names]
    true_class = true_column.selectbox("True class", choices, key="gallery.true")
    predicted_class = predicted_column.selectbox("Predicted class", choices, key="gallery.predicted")
    which = which_column.selectbox("Predictions", list(detail.GALLERY_WHICH), key="gallery.which")
    orders = list(detail.GALLERY_ORDER)
    order = order_column.selectbox(
        "Order", orders, format_func=lambda key: detail.GALLERY_ORDER[key], key="gallery.order"
    )
    filters = detail.gallery_filters(
        true_class or detail.ANY_CLASS, predicted_class or detail.ANY_CLASS, which or "all", order or orders[0]
    )
    page = st.session_state.get("gallery.page", 1)
    found = api_client.gallery(settings.api_url, run["run_id"], GALLERY_PAGE, (page - 1) * GALLERY_PAGE, **filters)
    if not found["data"]:
        st.info("No test image matches these choices.")
        return
    start = (page - 1) * GALLERY_PAGE
    st.caption(
        f"Images {start + 1}–{start + len(found['data'])} of {found['count']} matching ({found['total']} tested)."
    )
    looked = st.toggle(
        "Show where the run looked (Grad-CAM)",
        key="gallery.heatmaps",
        help="Kept for every misclassified test image and a sample of the correct ones: red is where "
        "the run saw the most of the class it predicted.",
    )

    def show(column, image: dict) -> None:
        caption = detail.gallery_caption(image)
        if looked and image.get("heatmap"):
            ui.heatmap_thumbnail(column, run["run_id"], image["file"], caption)
        else:
            ui.thumbnail(column, dataset, image["file"], caption)

    ui.gallery(
        found["data"],
        found["count"],
        show,
        "gallery.page",
        GALLERY_PAGE,
        GALLERY_ROW,
    )


def show_run(run_id: str) -> None:
    run = api_client.get_run(settings.api_url, run_id)
    header(run)
    actions(run)
    results(run)
    curves(run)
    evaluation(run)
    if run["status"] == "completed":
        ui.section(registry_views.registry_box, run, settings.api_url)
        ui.section(export_views.export_box, run, settings.api_url)
        ui.section(registry_views.model_card, run, settings.api_url)
        ui.section(gallery, run)


def show_live_run(run_id: str) -> None:
    """show_run in a fragment, which keeps refreshing: an API problem is shown, not raised."""
    try:
        show_run(run_id)
    except (ApiUnavailable, ApiError) as error:
        ui.show_api_problem(error)


def body() -> None:
    run_id = pick_run()
    if run_id is None:
        return
    status = api_client.get_run(settings.api_url, run_id)["status"]
    if status in run_views.ACTIVE_STATES:
        # A run still training refreshes on its own, like the live monitor.
        st.fragment(show_live_run, run_every=settings.refresh_s)(run_id)
    else:
        show_run(run_id)  # an API problem goes to ui.api_page, which recovers by itself


st.title("Run detail")
ui.api_page(body)
