"""Predict: upload a leaf photo, choose a completed run or ensemble, see the class probabilities."""

import base64

import streamlit as st

from services.dashboard import api_client, charts, ui
from services.dashboard.api_client import ApiError, ApiUnavailable
from services.dashboard.settings import get_settings

RUNS_LISTED = 500
RESULT = "predict.result"

settings = get_settings()


def run_label(run: dict) -> str:
    accuracy = (run.get("metrics") or {}).get("val_accuracy")
    return f"{run['run_id']} · {run['model_name']} {run['version']}" + (
        "" if accuracy is None else f" · val acc {accuracy:.1%}"
    )


def body() -> None:
    listing = api_client.completed_runs(settings.api_url, RUNS_LISTED, sort="-val_accuracy")
    by_id = {run["run_id"]: run for run in listing["data"]}
    if not by_id:
        ui.no_runs_yet(
            "No completed run yet — a prediction needs a trained run or ensemble; queue a job and let it finish"
        )
        return
    run_id = st.selectbox(
        "Run or ensemble (best val accuracy first)",
        list(by_id),
        key="predict.run",
        format_func=lambda run_id: run_label(by_id[run_id]),
    )
    upload = st.file_uploader("Leaf photo (JPEG, PNG or WebP)", type=["jpg", "jpeg", "png", "webp"], key="predict.file")
    if upload is None:
        st.info("Upload a photo of a rice leaf to classify it.")
        return
    photo, result_column = st.columns([1, 2])
    looked = result_column.toggle(
        "Show where the run looked (Grad-CAM)",
        key="predict.heatmap",
        help="A heatmap over the photo: red where the run saw the most of the class it gives.",
    )
    if result_column.button("Predict", type="primary", icon="🌿", key="predict.go"):
        try:
            with st.spinner("A predictor is classifying the photo…"):
                st.session_state[RESULT] = api_client.predict(
                    settings.api_url,
                    run_id,
                    upload.name,
                    upload.getvalue(),
                    upload.type or "application/octet-stream",
                    heatmap=looked,
                )
        except (ApiUnavailable, ApiError) as error:
            st.session_state.pop(RESULT, None)
            ui.show_write_problem(error)
    result = st.session_state.get(RESULT)
    heatmap = result.get("heatmap") if result and result.get("run_id") == run_id else None
    if heatmap:
        photo.image(base64.b64decode(heatmap), caption="where the run looked (Grad-CAM)", width="stretch")
    else:
        photo.image(upload.getvalue(), caption=upload.name, width="stretch")
    if result and result.get("run_id") == run_id:
        probabilities = result["probabilities"]
        result_column.metric("most likely", result["class_name"])
        result_column.caption(
            f"with probability {probabilities[result['class_name']]:.1%} ({run_label(by_id[run_id])})"
        )
        result_column.plotly_chart(charts.probabilities_figure(probabilities), key="predict.chart")


st.title("Predict")
ui.api_page(body)
