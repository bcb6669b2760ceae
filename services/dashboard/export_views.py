"""The run detail page's ONNX export box: ask for an export, follow it, download the model file.

The export is made by a trainer with its parity check (services/trainer/onnx_export.py); the box
follows it every refresh while it is queued or running, and shows the parity figure and the int8
accuracy change once it is done.
"""

from typing import Any

import streamlit as st

from services.dashboard import api_client, ui
from services.dashboard.api_client import ApiError, ApiUnavailable
from services.dashboard.settings import get_settings

BUSY = ("queued", "running")


def export_box(run: dict[str, Any], api_url: str) -> None:
    st.subheader("ONNX export")
    state = api_client.export_status(api_url, run["run_id"])
    if state is not None and state["status"] in BUSY:
        st.fragment(_follow, run_every=get_settings().refresh_s)(run["run_id"], api_url)
        return
    if state is not None:
        _outcome(run["run_id"], state, api_url)
    again = state is not None
    columns = st.columns([2, 2, 3])
    quantize = columns[1].checkbox("also int8", key="export.quantize", help="dynamic quantisation of the weights")
    label = "Export again" if again else "Export to ONNX"
    if columns[0].button(label, icon="📦", key="export.ask"):
        try:
            api_client.ask_export(api_url, run["run_id"], quantize)
        except (ApiUnavailable, ApiError) as error:
            ui.show_write_problem(error)
        else:
            api_client.export_status.clear()
            st.rerun()


def _follow(run_id: str, api_url: str) -> None:
    """While the export is queued or running: its state, read again every refresh."""
    api_client.export_status.clear()
    state = api_client.export_status(api_url, run_id)
    if state is None or state["status"] not in BUSY:
        st.rerun(scope="app")
    status = state["status"]
    st.info(f"Export {status}: a trainer makes it between training jobs, then checks it against PyTorch.", icon="⏳")


def _outcome(run_id: str, state: dict[str, Any], api_url: str) -> None:
    report = state.get("report") or {}
    parity = report.get("parity")
    if state["status"] == "completed" and parity:
        st.success(
            f"Exported: onnxruntime and PyTorch differ by at most {parity['max_abs_diff']:.1e} in probability "
            f"on {parity['images']} test images (tolerance {parity['tolerance']:g}).",
            icon="✅",
        )
        files = {entry["name"]: entry for entry in report.get("files", [])}
        columns = st.columns(3)
        with columns[0]:
            _download_button("ONNX model", run_id, api_url, int8=False)
        if int8 := report.get("int8"):
            with columns[1]:
                _download_button("int8 model", run_id, api_url, int8=True)
            st.caption(
                f"int8: test accuracy {int8['int8_accuracy']:.3f} against {int8['fp32_accuracy']:.3f} in fp32 "
                f"({int8['accuracy_change']:+.3f}) on {int8['images']} images."
            )
        st.caption(" · ".join(f"`{name}` sha256 {entry['sha256'][:12]}…" for name, entry in files.items()))
    elif state["status"] == "refused":
        st.error(f"Export refused: {report.get('error')}", icon="🚫")
    else:
        st.error(f"Export failed: {report.get('error')}", icon="⚠️")


def _download_button(label: str, run_id: str, api_url: str, int8: bool) -> None:
    """The model file's bytes are fetched on click only."""
    st.download_button(
        label,
        icon="💾",
        file_name=f"{run_id}.int8.onnx" if int8 else f"{run_id}.onnx",
        mime="application/octet-stream",
        on_click="ignore",
        key="export.download_int8" if int8 else "export.download",
        data=lambda: api_client.exported_model(api_url, run_id, int8=int8),
    )
