"""New job / sweep: a form built from GET /models' defaults and JobSpec's fields, posting POST /jobs
or POST /sweeps. The dataset is picked from GET /datasets, with what its audit warns about."""

import streamlit as st

from services.dashboard import api_client, dataset_views, job_form, ui
from services.dashboard.api_client import ApiError, ApiUnavailable
from services.dashboard.settings import get_settings
from shared.images import format_image_size

CREATED = "new_job.created"
DATASETS_PAGE = "pages/datasets.py"

settings = get_settings()


def field_input(container, name: str, kind: str, default, model: str):
    label, key = name.replace("_", " "), f"new_job.{model}.{name}"
    help_text = job_form.help_text(name)
    if kind == "bool":
        return container.checkbox(label, value=default, key=key, help=help_text)
    if kind == "choice":
        options = job_form.choices(name)
        return container.selectbox(label, options, index=options.index(default), key=key, help=help_text)
    if kind == "size":
        return container.text_input(label, value=format_image_size(default), key=key, help=help_text)
    if kind == "text":
        return container.text_input(label, value="" if default is None else str(default), key=key, help=help_text)
    low, high = job_form.input_range(name)
    if kind == "int":
        return int(
            container.number_input(
                label, value=int(default), min_value=low, max_value=high, step=1, key=key, help=help_text
            )
        )
    if kind == "float":
        return container.number_input(
            label, value=float(default), min_value=low, max_value=high, format="%.6g", key=key, help=help_text
        )
    return container.number_input(  # optional_float: cleared, it is null
        label, value=default, min_value=low, max_value=high, step=0.05, key=key, help=help_text
    )


def submit(model: str, dataset: str, version: str, values: dict, defaults: dict, sweep: bool, grid_texts: dict):
    try:
        spec = job_form.job_spec(model, dataset, values, defaults, version)
        if sweep:
            grid = job_form.parse_grid(grid_texts)
            if not grid:
                raise ValueError("grid: give at least one field a comma-separated list of values")
            created = api_client.create_sweep(settings.api_url, spec, grid)
        else:
            created = api_client.create_job(settings.api_url, spec)
    except ValueError as error:
        st.error(f"Check the form — {error}")
        return
    except (ApiUnavailable, ApiError) as error:
        ui.show_write_problem(error)
        return
    api_client.list_runs.clear()
    st.session_state[CREATED] = created


def show_created() -> None:
    created = st.session_state.get(CREATED)
    if not created:
        return
    if "sweep_id" in created:
        st.success(f"Queued sweep {created['sweep_id']}: {created['count']} runs.")
        st.page_link("pages/compare.py", label="Compare the sweep's runs", icon="📊")
        for run_id in created["run_ids"][:10]:
            ui.link_to_run(run_id)
    else:
        st.success(f"Queued run {created['run_id']} ({created['version']}), status {created['status']}.")
        ui.link_to_run(created["run_id"])
        st.page_link("pages/live_monitor.py", label="Watch it on the live monitor", icon="📈")


def pick_dataset() -> str:
    """A dataset under the data root, and its warnings; another path inside it may be typed."""
    by_name = {dataset["name"]: dataset for dataset in api_client.datasets(settings.api_url)}
    name = st.selectbox(
        "Dataset",
        list(by_name),
        index=None,
        key="new_job.dataset",
        placeholder="Choose a dataset under the data root",
        accept_new_options=True,
        format_func=lambda name: dataset_views.option_label(by_name.get(name), name),
        help=job_form.help_text("dataset"),
    )
    if name is None:
        if not by_name:
            st.info("No dataset under the data root (PADDY_DATA_ROOT) yet; type a path inside it.")
        return ""
    if name in by_name:  # its warnings in full: the shortcuts' own messages
        ui.show_notices(dataset_views.notices(api_client.dataset(settings.api_url, name)))
        st.page_link(DATASETS_PAGE, label="See the dataset", icon="🗂️", query_params={"dataset": name})
    return name


def body() -> None:
    catalogue = {model["name"]: model for model in api_client.models(settings.api_url)}
    if not catalogue:
        st.warning("The API lists no models; check the API's model registry.")
        return
    kind = st.segmented_control("Queue", ["one job", "a sweep"], default="one job", key="new_job.kind") or "one job"
    model = st.selectbox(
        "Model",
        list(catalogue),
        key="new_job.model",
        format_func=lambda name: f"{name} — {catalogue[name]['description']}",
    )
    defaults = catalogue[model]["defaults"]
    fields = job_form.form_fields(defaults)
    dataset = pick_dataset()
    with st.form("new_job.form"):
        version_column, _ = st.columns([1, 3])
        version = version_column.text_input(
            "Version (optional)", key="new_job.version", help=job_form.help_text("version")
        )
        values = {}
        main = st.columns(4)
        main_fields = [field for field in fields if field[0] in job_form.MAIN_FIELDS]
        for index, (name, field_kind, default) in enumerate(main_fields):
            values[name] = field_input(main[index % 4], name, field_kind, default, model)
        more = st.expander("More settings")
        more_columns = more.columns(4)
        for index, (name, field_kind, default) in enumerate(f for f in fields if f[0] not in job_form.MAIN_FIELDS):
            values[name] = field_input(more_columns[index % 4], name, field_kind, default, model)
        grid_texts = {}
        if kind == "a sweep":
            st.markdown("**Sweep grid** — comma-separated values; every combination is queued as one run.")
            grid_columns = st.columns(3)
            for index, name in enumerate(job_form.SWEEP_FIELDS):
                grid_texts[name] = grid_columns[index % 3].text_input(
                    name.replace("_", " "),
                    key=f"new_job.grid.{name}",
                    placeholder="e.g. 0.001, 0.0003" if name == "learning_rate" else "",
                )
        label = "Queue sweep" if kind == "a sweep" else "Queue job"
        if st.form_submit_button(label, type="primary", icon="🚀"):
            submit(model, dataset, version, values, defaults, kind == "a sweep", grid_texts)
    show_created()


st.title("New job")
ui.api_page(body)
