"""Datasets: the datasets under the data root and what their latest audit found — classes, image
sizes and shapes, copies of one photo (label conflicts first, with thumbnails), shortcuts,
unreadable files — and a button that queues an audit. The dataset comes from the picker or the
`dataset` query parameter."""

import streamlit as st

from services.dashboard import api_client, dataset_views, ui
from services.dashboard.api_client import ApiError, ApiUnavailable
from services.dashboard.settings import get_settings

PICKED = "datasets.dataset"
AUDIT_ASKED = "datasets.audit_asked"

settings = get_settings()


def overview(datasets: list[dict]) -> None:
    st.dataframe(
        dataset_views.datasets_table(datasets),
        hide_index=True,
        column_config={
            "audited": st.column_config.DatetimeColumn("audited", format="YYYY-MM-DD HH:mm", width="medium"),
            "copy_groups": st.column_config.NumberColumn("copy groups"),
            "label_conflicts": st.column_config.NumberColumn("label conflicts"),
        },
        key="datasets.table",
    )


def pick(datasets: list[dict]) -> str:
    """By name alone: the table above says what each one's audit found."""
    names = [dataset["name"] for dataset in datasets]
    wanted = st.query_params.get("dataset")
    name = st.selectbox("Dataset", names, index=names.index(wanted) if wanted in names else 0, key=PICKED)
    st.query_params["dataset"] = name
    return name


def request_audit(name: str) -> None:
    """The button's callback: it runs before the page does, so the whole page shows the audit queued."""
    try:
        st.session_state[AUDIT_ASKED] = api_client.queue_audit(settings.api_url, name)
    except (ApiUnavailable, ApiError) as error:
        st.session_state[AUDIT_ASKED] = {"dataset": name, "problem": error}
    api_client.dataset.clear()
    api_client.datasets.clear()


def audit_button(name: str) -> None:
    """Queue an audit; what the API answered stays shown until another dataset is picked."""
    st.button("Run an audit", icon="🔍", key="datasets.audit", on_click=request_audit, args=(name,))
    asked = st.session_state.get(AUDIT_ASKED)
    if not asked or asked["dataset"] != name:
        return
    if "problem" in asked:
        ui.show_write_problem(asked["problem"])
    elif asked["queued"]:
        st.success("Audit queued: a trainer runs it between training jobs, then this page shows its report.")
    else:
        st.info("An audit of this dataset is already queued; no second one was added.")


@st.fragment(run_every=ui.REFRESH_S)
def wait_for_audit(name: str) -> None:
    """While an audit is queued: once it is stored (or failed), the whole page shows it."""
    request = api_client.dataset(settings.api_url, name).get("audit_request")
    if not request or request.get("error"):
        api_client.datasets.clear()
        st.rerun(scope="app")


def findings(dataset: dict) -> None:
    audit = dataset.get("latest_audit")
    ui.show_notices(dataset_views.notices(dataset))
    if audit is None:
        return
    summary = dataset["audit"]
    row = st.columns(5)
    row[0].metric("images", summary["images"])
    row[1].metric("copy groups", summary["copy_groups"])
    row[2].metric("label conflicts", summary["label_conflicts"])
    row[3].metric("shortcuts", summary["shortcuts"])
    row[4].metric("unreadable", summary["unreadable"])
    st.caption(f"Audited {summary['audited_at'][:16].replace('T', ' ')} UTC in {audit['seconds']:.1f} s.")
    st.subheader("Classes")
    st.dataframe(
        dataset_views.class_table(audit),
        hide_index=True,
        column_config={
            "width": st.column_config.NumberColumn("median width (px)", format="%d"),
            "width_range": "width range",
            "height": st.column_config.NumberColumn("median height (px)", format="%d"),
            "height_range": "height range",
            "aspect_ratio": st.column_config.NumberColumn("median aspect ratio", format="%.2f"),
            "aspect_ratio_range": "aspect ratio range",
            "kilobytes": st.column_config.NumberColumn("median size (KB)", format="%.1f"),
        },
        key="datasets.classes",
    )
    copy_groups(dataset["name"], audit)
    if audit["unreadable"]:
        with st.expander(f"Unreadable files ({len(audit['unreadable'])})"):
            st.code("\n".join(audit["unreadable"]), language=None)


def copy_groups(name: str, audit: dict) -> None:
    groups = dataset_views.ordered_groups(audit)
    st.subheader("Copies of one photo")
    if not groups:
        st.caption("No two images are the same photo.")
        return
    shown = groups[: dataset_views.GROUPS_SHOWN]
    if len(groups) > len(shown):
        st.caption(f"The first {len(shown)} of {len(groups)} groups, label conflicts first.")
    for group in shown:
        with st.container(border=True):
            st.markdown(dataset_views.group_title(group))
            files = group["files"][: dataset_views.FILES_SHOWN]
            for column, file in zip(st.columns(dataset_views.FILES_SHOWN), files, strict=False):
                ui.thumbnail(column, name, file)
            if len(group["files"]) > len(files):
                st.caption(f"and {len(group['files']) - len(files)} more")


def body() -> None:
    datasets = api_client.datasets(settings.api_url)
    if not datasets:
        st.info(
            "No dataset under the data root (PADDY_DATA_ROOT) yet: put one folder per dataset there, "
            "with one sub-folder of images per class."
        )
        return
    table = st.container()
    name = pick(datasets)
    audit_button(name)
    dataset = api_client.dataset(settings.api_url, name)
    with table:  # above the picker; the picked dataset's row as fresh as its report below
        overview([dataset if listed["name"] == name else listed for listed in datasets])
    findings(dataset)
    request = dataset.get("audit_request")
    if request and not request.get("error"):
        wait_for_audit(name)


st.title("Datasets")
ui.api_page(body)
