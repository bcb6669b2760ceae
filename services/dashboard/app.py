"""The Paddy dashboard: `streamlit run services/dashboard/app.py` (reads PADDY_API_URL).

This file only builds the navigation; each page is its own file in pages/.
"""

import streamlit as st

st.set_page_config(page_title="Paddy", page_icon="🌾", layout="wide")

PAGES = {
    "Training": [
        st.Page("pages/live_monitor.py", title="Live monitor", icon="📈", default=True),
        st.Page("pages/new_job.py", title="New job", icon="➕"),
        st.Page("pages/datasets.py", title="Datasets", icon="🗂️"),
    ],
    "Results": [
        st.Page("pages/run_detail.py", title="Run detail", icon="🔎"),
        st.Page("pages/compare.py", title="Compare", icon="📊"),
        st.Page("pages/sweeps.py", title="Sweeps", icon="🧭"),
        st.Page("pages/time_filter.py", title="Time filter", icon="🗓️"),
        st.Page("pages/predict.py", title="Predict", icon="🌿"),
        st.Page("pages/batch_predict.py", title="Batch predict", icon="🗃️"),
    ],
}

st.navigation(PAGES).run()
