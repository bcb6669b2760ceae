"""Batch predict: a zip of leaf photos or a folder of the data root, classified by a completed run
or ensemble on the predictors; a progress bar while it runs, then its images with their class and
confidence, and the CSV to download."""

import streamlit as st

from services.dashboard import api_client, batch_views, detail, run_views, ui
from services.dashboard.api_client import ApiError, ApiUnavailable
from services.dashboard.settings import get_settings

RUNS_LISTED = 500
# The batch this page follows: the latest one started here.
BATCH = "batch.id"
SOURCES = {"zip": "Upload a zip", "folder": "A folder of the data root"}
# The gallery: images a page, in rows of this many.
GALLERY_PAGE, GALLERY_ROW = 24, 6

settings = get_settings()


def choose() -> None:
    """The run, the images, and the button that starts the batch."""
    listing = api_client.completed_runs(settings.api_url, RUNS_LISTED, sort="-val_accuracy")
    by_id = {run["run_id"]: run for run in listing["data"]}
    if not by_id:
        ui.no_runs_yet("No completed run yet — a batch prediction needs a trained run or ensemble")
        return
    run_id = st.selectbox(
        "Run or ensemble (best val accuracy first)",
        list(by_id),
        key="batch.run",
        format_func=lambda run_id: run_views.run_option_label(by_id[run_id]),
    )
    source = st.radio("Images", list(SOURCES), format_func=SOURCES.__getitem__, horizontal=True, key="batch.source")
    upload, folder = None, ""
    if source == "zip":
        upload = st.file_uploader(
            "A zip of JPEG, PNG or WebP photos (folders inside it are kept)", type=["zip"], key="batch.zip"
        )
    else:
        folder = st.text_input("Folder, relative to the data root", placeholder="field-2024/plot-7", key="batch.folder")
    ready = upload is not None or bool(folder.strip())
    if st.button("Classify", type="primary", icon="🌿", key="batch.go", disabled=not ready):
        try:
            if upload is not None:
                created = api_client.create_batch(
                    settings.api_url, run_id, zip_name=upload.name, zip_bytes=upload.getvalue()
                )
            else:
                created = api_client.create_batch(settings.api_url, run_id, folder=folder.strip())
        except (ApiUnavailable, ApiError) as error:
            ui.show_write_problem(error)
            return
        st.session_state[BATCH] = created["batch_id"]
        st.session_state["batch.page"] = 1


def follow(batch_id: str) -> None:
    batch = api_client.batch(settings.api_url, batch_id)
    st.subheader(f"Batch {batch_id}")
    if note := batch_views.skipped_note(batch):
        st.info(note)
    if batch_views.is_active(batch):
        st.fragment(show_progress, run_every=settings.refresh_s)(batch_id)
    elif batch["state"] == "done":
        results(batch)
    else:
        st.error(f"The batch {batch['state']}: {batch['error']}")


def show_progress(batch_id: str) -> None:
    """Refreshes by itself; once the batch has finished, the whole page shows its results."""
    try:
        batch = api_client.batch(settings.api_url, batch_id)
    except (ApiUnavailable, ApiError) as error:
        ui.show_api_problem(error)
        return
    if not batch_views.is_active(batch):
        api_client.batch.clear()  # the page must not read the cached "running" again
        st.rerun(scope="app")
    fraction, text = batch_views.progress(batch)
    st.progress(fraction, text=text)


def results(batch: dict) -> None:
    batch_id = batch["batch_id"]
    summary, download = st.columns([3, 1])
    summary.success(batch_views.outcome(batch))
    download.download_button(
        "Download CSV",
        data=api_client.batch_csv(settings.api_url, batch_id),
        file_name=f"batch-{batch_id}.csv",
        mime="text/csv",
        icon="⬇️",
        key="batch.csv",
    )
    class_column, order_column = st.columns(2)
    found = api_client.batch_predictions(settings.api_url, batch_id, 1)
    predicted = class_column.selectbox("Predicted class", [detail.ANY_CLASS, *found["class_names"]], key="batch.class")
    orders = list(detail.GALLERY_ORDER)
    order = order_column.selectbox("Order", orders, format_func=detail.GALLERY_ORDER.__getitem__, key="batch.order")
    page = st.session_state.get("batch.page", 1)
    found = api_client.batch_predictions(
        settings.api_url,
        batch_id,
        GALLERY_PAGE,
        (page - 1) * GALLERY_PAGE,
        predicted_class=None if predicted == detail.ANY_CLASS else predicted,
        sort=order,
    )
    ui.gallery(
        found["data"],
        found["count"],
        lambda column, image: ui.batch_thumbnail(column, batch_id, image["file"], batch_views.image_caption(image)),
        "batch.page",
        GALLERY_PAGE,
        GALLERY_ROW,
    )


def body() -> None:
    choose()
    if batch_id := st.session_state.get(BATCH):
        follow(batch_id)


st.title("Batch predict")
ui.api_page(body)
