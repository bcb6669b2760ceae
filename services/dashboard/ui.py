"""Pieces every page shares: API problems shown plainly, recovery, links to a run's detail."""

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import streamlit as st

from services.dashboard import api_client
from services.dashboard.api_client import ApiError, ApiUnavailable
from services.dashboard.dataset_views import Notice
from services.dashboard.settings import get_settings

RUN_DETAIL_PAGE = "pages/run_detail.py"
NEW_JOB_PAGE = "pages/new_job.py"
# Read at import: how often the recovery fragment asks the API. Everything else reads the
# settings when called, since tests point the dashboard at another API between runs.
REFRESH_S = get_settings().refresh_s
T = TypeVar("T")


def show_api_problem(error: ApiUnavailable | ApiError) -> None:
    """What went wrong, in one line, and that the page retries by itself."""
    settings = get_settings()
    retry = f"This page retries by itself every {settings.refresh_s:g} s."
    if isinstance(error, ApiUnavailable):
        st.error(f"The API at {settings.api_url} is unreachable ({error.reason}). {retry}", icon="🔌")
        return
    st.error(f"The API at {settings.api_url} answered {error.status_code}: {error.detail}. {retry}")
    if error.status_code >= 500:
        try:
            st.caption(f"API health: {api_client.health(settings.api_url)}")
        except ApiUnavailable:
            pass  # it went away meanwhile: the next refresh says so


def show_write_problem(error: ApiUnavailable | ApiError) -> None:
    """A failed POST: the API's reason, and what to do about a missing key."""
    settings = get_settings()
    if isinstance(error, ApiUnavailable):
        st.error(
            f"The API at {settings.api_url} is unreachable ({error.reason}); nothing was sent. "
            "Try again once it is back.",
            icon="🔌",
        )
    elif error.status_code == 401:
        st.error("The API refused the request: set PADDY_API_KEY for the dashboard to the API's key.")
    else:
        st.error(f"The API refused the request ({error.status_code}): {error.detail}")


@st.fragment(run_every=REFRESH_S)
def _rerun_when_api_is_back() -> None:
    """Asks /health every refresh; once the API answers, the whole page renders again."""
    try:
        api_client.health(get_settings().api_url)
    except ApiUnavailable:
        return
    st.rerun(scope="app")


def api_page(body: Callable[[], None]) -> None:
    """Run a page's body; an API problem replaces the rest of it and the page recovers by itself."""
    try:
        body()
    except (ApiUnavailable, ApiError) as error:
        show_api_problem(error)
        if isinstance(error, ApiUnavailable) or error.status_code >= 500:
            _rerun_when_api_is_back()


def section(render: Callable[..., T], *args) -> T | None:
    """One part of a page; an API error there (an unknown sweep, say) is shown in its place and
    the rest of the page still renders. An unreachable API stops the whole page (api_page)."""
    try:
        return render(*args)
    except ApiError as error:
        if error.status_code >= 500:
            raise
        st.error(f"The API answered {error.status_code}: {error.detail}")
        return None


def link_to_run(run_id: str, label: str | None = None) -> None:
    st.page_link(RUN_DETAIL_PAGE, label=label or f"Open run {run_id}", icon="🔎", query_params={"run_id": run_id})


def no_runs_yet(what: str = "No runs yet") -> None:
    st.info(f"{what} — queue one on the New job page, with `POST /jobs`, or with `paddy demo`.")
    st.page_link(NEW_JOB_PAGE, label="Queue a job", icon="➕")


# The runs tables show results first, then the settings that produced them.
RUN_COLUMN_ORDER = [
    "run_id",
    "model",
    "version",
    "status",
    "val_accuracy",
    "test_accuracy",
    "test_interval",
    "test_images",
    "test_f1_macro",
    "train_accuracy",
    "best_val_loss",
    "epochs_run",
    "early_stopped",
    "learning_rate",
    "batch_size",
    "dropout",
    "feature_extraction",
    "duration_minutes",
    "start_time",
    "end_time",
    "sweep_id",
]


def run_columns() -> dict:
    """How the runs tables (compare, time filter) title and format `comparison.runs_table`."""
    return {
        "run_id": st.column_config.TextColumn("run id"),
        "feature_extraction": st.column_config.CheckboxColumn("feature extraction"),
        "batch_size": st.column_config.NumberColumn("batch size"),
        "learning_rate": st.column_config.NumberColumn("learning rate", format="%g"),
        "early_stopped": st.column_config.CheckboxColumn("early stopped"),
        "epochs_run": st.column_config.NumberColumn("epochs run"),
        "train_accuracy": st.column_config.NumberColumn("train acc", format="percent"),
        "val_accuracy": st.column_config.NumberColumn("val acc", format="percent"),
        "test_accuracy": st.column_config.NumberColumn("test acc", format="percent"),
        "test_interval": st.column_config.TextColumn(
            "test ± (95 %)", help="half the Wilson 95 % interval's width, in points, and the interval"
        ),
        "test_images": st.column_config.NumberColumn("test images"),
        "test_f1_macro": st.column_config.NumberColumn("test F1", format="percent"),
        "best_val_loss": st.column_config.NumberColumn("best val loss", format="%.4f"),
        "duration_minutes": st.column_config.NumberColumn("duration (min)", format="%.1f"),
        "start_time": st.column_config.DatetimeColumn("start", format="YYYY-MM-DD HH:mm", timezone=st.context.timezone),
        "end_time": st.column_config.DatetimeColumn("end", format="YYYY-MM-DD HH:mm", timezone=st.context.timezone),
        "sweep_id": st.column_config.TextColumn("sweep"),
    }


def show_notices(notices: Iterable[Notice]) -> None:
    """A dataset's warnings and notes (dataset_views.notices), as the Datasets and New job pages show them."""
    for notice in notices:
        (st.warning if notice.kind == "warning" else st.info)(notice.text)


# Thumbnails of dataset images (copy groups, galleries): longest side in pixels.
THUMBNAIL_PX = 160


def thumbnail(column, dataset: str, file: str, caption: str | None = None) -> None:
    """One image of a dataset as a thumbnail served by the API, or why it cannot be shown (the
    file went away since, say)."""
    _thumbnail(column, lambda url: api_client.thumbnail(url, dataset, file, THUMBNAIL_PX), file, caption)


def heatmap_thumbnail(column, run_id: str, file: str, caption: str | None = None) -> None:
    """A test image with the run's Grad-CAM map over it (kept when the run completed)."""
    _thumbnail(column, lambda url: api_client.run_heatmap(url, run_id, file), file, caption)


def batch_thumbnail(column, batch_id: str, file: str, caption: str | None = None) -> None:
    """One image of a batch prediction as a thumbnail served by the API, or why it cannot be shown."""
    _thumbnail(column, lambda url: api_client.batch_thumbnail(url, batch_id, file, THUMBNAIL_PX), file, caption)


def gallery(
    images: Sequence[T], count: int, show: Callable[[Any, T], None], page_key: str, per_page: int, per_row: int
) -> None:
    """One page of a gallery, per_row images a row (show(column, image) draws one), and a page
    picker (session state page_key) when the count of images needs more than one page."""
    for first in range(0, len(images), per_row):
        for column, image in zip(st.columns(per_row), images[first : first + per_row], strict=False):
            show(column, image)
    pages = -(-count // per_page)
    if pages > 1:
        st.number_input(f"Page (of {pages})", 1, pages, key=page_key)


def _thumbnail(column, fetch: Callable[[str], bytes], file: str, caption: str | None) -> None:
    try:
        column.image(fetch(get_settings().api_url), caption=caption or file)
    except ApiError as error:
        column.caption(f"{file}: {error.detail}")
