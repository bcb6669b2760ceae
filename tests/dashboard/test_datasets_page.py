"""The Datasets page and the New job page's dataset picker against a running API: datasets on
disk under the stack's data root, audits published on the event stream as the audit task
publishes them and stored by the recorder."""

import uuid

import pytest

from shared import names
from shared.audit_requests import audit_failed
from shared.datasets.synth import synthesize_dataset
from shared.schemas.events import encode_event, utc_now
from tests.utils.api import queued_tasks
from tests.utils.audits import audit_of, audited
from tests.utils.dashboard import links, page, table_with, wait_until_shown

pytestmark = pytest.mark.integration
PAGE = "pages/datasets.py"


@pytest.fixture
def new_dataset(stack):
    """A dataset of its own under the stack's data root: (name, folder)."""
    name = f"leaves-{uuid.uuid4().hex[:6]}"
    folder = stack.state_dir / "data" / name
    synthesize_dataset(folder, per_class=2, size=24, seed=5)
    return name, folder


@pytest.fixture
def audited_dataset(new_dataset, api, events):
    """new_dataset with an audit stored: a label conflict, a near-copy group, a shortcut."""
    name, folder = new_dataset
    events.xadd(names.EVENTS_STREAM, encode_event(audited(audit_of(folder, name, audited_at=utc_now()))))
    wait_until_shown(api, lambda client: client.get(f"/datasets/{name}").json()["audit"] is not None)
    return name, folder


def texts(elements) -> list[str]:
    return [element.value for element in elements]


def test_a_dataset_never_audited_says_so(api_url, dashboard_env, new_dataset):
    dashboard_env(api_url)
    name, _ = new_dataset

    app = page(PAGE, {"dataset": name})

    assert app.title[0].value == "Datasets"
    listed = table_with(app, "label_conflicts").set_index("dataset")
    assert listed.loc[name, "images"] == 6 and listed.loc[name, "state"] == "not audited"
    assert listed.loc[name, "classes"] == "Bacterialblight 2 · Brownspot 2 · Leafsmut 2"
    assert app.selectbox(key="datasets.dataset").value == name
    assert any(text.startswith("Not audited yet") for text in texts(app.info))
    assert not app.get("image") and not app.warning


def test_an_audit_shows_classes_copy_groups_with_thumbnails_and_warnings(api_url, dashboard_env, audited_dataset):
    dashboard_env(api_url)
    name, _ = audited_dataset

    app = page(PAGE, {"dataset": name})

    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics == {"images": "6", "copy groups": "2", "label conflicts": "1", "shortcuts": "1", "unreadable": "0"}
    warnings = texts(app.warning)
    assert warnings[0].startswith("Label conflicts in 1 copy group")
    assert "Shortcut: file size alone predicts the class: 95 % against 34 % by chance" in warnings
    classes = table_with(app, "aspect_ratio").set_index("class")
    assert list(classes.index) == ["Bacterialblight", "Brownspot", "Leafsmut"]
    assert classes.loc["Brownspot", "images"] == 2 and classes.loc["Brownspot", "width_range"] == "32–32"
    # Label conflicts first, each file of a group shown by its thumbnail from the API.
    groups = [text for text in texts(app.markdown) if "file" in text]
    assert groups[0] == "⚠️ label conflict · 2 files · identical files · Bacterialblight, Brownspot"
    assert groups[1] == "2 files · one photo, transformed · Brownspot"
    images = app.get("image")
    assert [caption for image in images for caption in image.captions] == [
        "Bacterialblight/0000.png",
        "Brownspot/0000.png",
        "Brownspot/0000.png",
        "Brownspot/0001.png",
    ]
    # JPEG thumbnails from the API: the files themselves are PNG.
    assert all(url.endswith(".jpg") for image in images for url in image.value)


def test_the_audit_button_queues_one_audit_and_shows_it_waiting(api_url, dashboard_env, new_dataset, events):
    dashboard_env(api_url)
    name, _ = new_dataset
    app = page(PAGE, {"dataset": name})

    app.button(key="datasets.audit").click().run()

    assert texts(app.success) == [
        "Audit queued: a trainer runs it between training jobs, then this page shows its report."
    ]
    assert any(text.startswith("An audit was queued at") for text in texts(app.info))
    assert table_with(app, "label_conflicts").set_index("dataset").loc[name, "state"] == "⏳ audit queued"
    app.button(key="datasets.audit").click().run()
    assert texts(app.info)[0] == "An audit of this dataset is already queued; no second one was added."
    audits = [args for task, args in queued_tasks(events, names.BACKGROUND_QUEUE) if task == names.AUDIT_TASK]
    assert audits.count([name]) == 1


def test_a_failed_audit_says_why(api_url, dashboard_env, new_dataset, events, api):
    dashboard_env(api_url)
    name, _ = new_dataset
    assert api.post(f"/datasets/{name}/audit").status_code == 202
    audit_failed(events, name, "ValueError: no readable image in class 'Leafsmut'", utc_now())

    app = page(PAGE, {"dataset": name})

    assert "The last audit failed: ValueError: no readable image in class 'Leafsmut'" in texts(app.warning)
    assert table_with(app, "label_conflicts").set_index("dataset").loc[name, "state"] == "❌ audit failed"


def test_without_datasets_the_page_says_where_they_go(empty_api_url, dashboard_env):
    dashboard_env(empty_api_url)
    app = page(PAGE)
    assert texts(app.info)[0].startswith("No dataset under the data root (PADDY_DATA_ROOT) yet")


def test_the_new_job_picker_shows_the_chosen_datasets_warnings(api_url, dashboard_env, audited_dataset):
    dashboard_env(api_url)
    audited_name, _ = audited_dataset
    app = page("pages/new_job.py")
    picker = app.selectbox(key="new_job.dataset")
    assert picker.value is None
    assert f"{audited_name} — 3 classes, 6 images · ⚠️ 1 label conflict, 1 shortcut" in picker.options

    picker.select(audited_name).run()

    warnings = texts(app.warning)
    assert warnings[0].startswith("Label conflicts in 1 copy group")
    assert "Shortcut: file size alone predicts the class: 95 % against 34 % by chance" in warnings
    assert links(app)["See the dataset"] == f"dataset={audited_name}"


def test_the_new_job_picker_says_a_dataset_is_not_audited(api_url, dashboard_env, new_dataset):
    dashboard_env(api_url)
    name, _ = new_dataset
    app = page("pages/new_job.py")

    app.selectbox(key="new_job.dataset").select(name).run()

    assert any(text.startswith("Not audited yet") for text in texts(app.info))
    assert not app.warning
