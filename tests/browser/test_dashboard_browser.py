"""The dashboard in a real browser on the live local stack: queue a job from the New job form,
watch its epochs grow on the live monitor without a page reload, open its detail page, predict
with it, see a random search's trials on the Sweeps page, compare it with a sweep; audit a
dataset from the Datasets page and see its report arrive; a screenshot of every page.

Debian's Chromium (`apt-get install chromium`) driven by Playwright's sync API, headless; the
stack is redis-server, nx-27017, recorder, API, one Celery trainer and Streamlit on free ports.
"""

import csv
import re
import shutil
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.local_stack import LocalStack
from shared.datasets.synth import synthesize_dataset
from shared.onnx_model import OnnxClassifier
from tests.utils.audits import generated_dataset
from tests.utils.stack import TRAINING_STACK, api_client, running_stack
from tests.utils.waiting import wait_for, wait_for_run

pytestmark = pytest.mark.integration

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]' installs playwright")
CHROMIUM = shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip("no chromium on PATH: `apt-get install chromium` (make install does)", allow_module_level=True)

API_KEY = "browser-test-key"
DATASET = "leaves"
# A dataset with a label conflict and a size shortcut planted, for the Datasets page.
PLANTED = "planted"
EPOCHS = 6
# Streamlit's own timeout per action; training steps get their own, longer waits.
UI_TIMEOUT_MS = 30_000
# A random search of three short runs on small images, the median pruner judging each epoch: it
# trains while the pages after the run detail are clicked through, then the Sweeps page shows it.
SEARCH = {
    "strategy": "random",
    "base": {"model_name": "custom_cnn", "dataset": DATASET, "epochs": 2, "image_size": 32, "batch_size": 16},
    "space": {"learning_rate": {"low": 0.0005, "high": 0.005, "log": True}, "dropout": {"choices": [0.0, 0.3]}},
    "max_runs": 3,
    "parallel": 1,
    "pruner": "median",
}
SWEEP_PICKER = "Sweep (type to search by id, kind, model or dataset)"


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[LocalStack]:
    state_dir = tmp_path_factory.mktemp("browser-stack")
    # Small images: an epoch of the custom CNN takes about a second on 2 free CPU cores (ten
    # times that while other processes load them), long enough to watch epochs go by.
    synthesize_dataset(state_dir / "data" / DATASET, per_class=100, size=64, seed=3)
    generated_dataset(state_dir / "data" / PLANTED)
    env = {
        "PADDY_API_KEY": API_KEY,
        "PADDY_ENVIRONMENT": "development",
        "PADDY_REFRESH_S": "1",
        "PADDY_HEARTBEAT_INTERVAL_S": "2",
    }
    with running_stack(state_dir, (*TRAINING_STACK, "dashboard"), env=env) as running:
        yield running


@pytest.fixture(scope="module")
def api(stack) -> Iterator[httpx.Client]:
    with api_client(stack, timeout_s=30, api_key=API_KEY) as client:
        yield client


@pytest.fixture
def page(stack, tmp_path, monkeypatch):
    # Chromium writes its profile and caches under these; keep them out of the home directory.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-dev-shm-usage",
                # WebGL without a GPU: Plotly draws parallel coordinates with it.
                "--use-angle=swiftshader",
                "--enable-unsafe-swiftshader",
            ],
        )
        context = browser.new_context(viewport={"width": 1440, "height": 1000}, timezone_id="UTC")
        tab = context.new_page()
        tab.set_default_timeout(UI_TIMEOUT_MS)
        yield tab
        context.close()
        browser.close()


def navigations(page) -> int:
    """Full page loads of this tab: Streamlit's own page switches and refreshes are not loads."""
    return page.evaluate("performance.getEntriesByType('navigation').length")


def metric(page, label: str) -> str | None:
    """The value of the st.metric with this label, as shown; None when there is none."""
    for box in page.locator('[data-testid="stMetric"]').all():
        shown = box.locator('[data-testid="stMetricLabel"]').inner_text().strip()
        if shown == label:
            return box.locator('[data-testid="stMetricValue"]').inner_text().strip()
    return None


def open_page(page, title: str) -> None:
    """Click a page in the sidebar navigation and wait for its title."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    page.get_by_role("heading", name=title if title != "Compare" else "Compare runs").first.wait_for()


def choose(page, label: str, option: str, tries: int = 3) -> None:
    """Pick the option whose shown text starts with `option` in the selectbox labelled `label`;
    tried again when the page redraws the box while its list opens."""
    choice = page.get_by_role("option", name=re.compile(rf"^{re.escape(option)}\b"))
    for attempt in range(tries):
        page.locator('[data-testid="stSelectbox"]').filter(has=page.get_by_text(label, exact=True)).click()
        try:
            choice.click(timeout=10_000)
            return
        except sync_api.TimeoutError:
            if attempt == tries - 1:
                raise
            page.keyboard.press("Escape")


def settle(page, charts: int = 0, timeout_s: float = 30) -> None:
    """Until the script has finished and at least `charts` Plotly charts have drawn."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        running = page.locator('[data-testid="stStatusWidget"]').filter(has_text="Running").count()
        drawn = page.locator(".js-plotly-plot .main-svg").count()
        if not running and drawn >= charts:
            page.wait_for_timeout(700)  # let the last charts finish their transitions
            return
        page.wait_for_timeout(250)
    raise AssertionError(f"the page did not settle with {charts} charts within {timeout_s} s")


def shoot(page, path: Path) -> None:
    """The whole page: Streamlit scrolls inside its main block, so the viewport grows to fit it."""
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], height)})
    page.wait_for_timeout(800)  # Plotly redraws at the new size
    page.screenshot(path=path, full_page=True)
    page.set_viewport_size(size)


def summary_classes(api: httpx.Client, run_id: str) -> list[str]:
    return api.get(f"/jobs/{run_id}").json()["summary"]["class_names"]


def finished_search(api: httpx.Client, sweep_id: str) -> dict | None:
    """GET /sweeps/{sweep_id}'s search once it has finished."""
    search = api.get(f"/sweeps/{sweep_id}").json().get("search") or {}
    return search if search.get("state") == "finished" else None


def test_queue_watch_inspect_predict_and_compare_in_a_browser(stack, api, page, artifacts_dir: Path):
    page.goto(stack.urls()["dashboard"])
    page.get_by_role("heading", name="Live monitor").wait_for()
    page.evaluate("window.paddyLoaded = Date.now()")  # gone if the page ever reloads
    loads = navigations(page)

    # Queue a job from the New job form.
    open_page(page, "New job")
    choose(page, "Dataset", DATASET)
    page.get_by_text("Not audited yet").first.wait_for()  # the chosen dataset's warnings
    for label, value in (("epochs", EPOCHS), ("batch size", 16), ("image size", 64), ("patience", EPOCHS)):
        field = page.get_by_label(label, exact=True)
        field.fill(str(value))
        field.press("Tab")
    page.get_by_role("heading", name="New job").click()  # no input keeps the focus
    settle(page)
    shoot(page, artifacts_dir / "new-job.png")
    page.get_by_role("button", name=re.compile("Queue job")).click()
    queued = page.locator('[data-testid="stAlertContentSuccess"]').filter(has_text="Queued run")
    run_id = re.search(r"Queued run (\w+)", queued.inner_text()).group(1)
    spec = api.get(f"/jobs/{run_id}").json()["spec"]
    assert (spec["dataset"], spec["epochs"], spec["image_size"], spec["batch_size"]) == (DATASET, EPOCHS, 64, 16)

    # The live monitor shows its epochs grow while the page stays the same page.
    page.get_by_role("link", name=re.compile("Watch it on the live monitor")).click()
    page.get_by_role("heading", name="Live monitor").wait_for()
    seen: list[int] = []
    deadline = time.monotonic() + 480
    screenshot_taken = False
    while time.monotonic() < deadline:
        status = api.get(f"/jobs/{run_id}").json()["status"]
        try:
            shown = metric(page, "epoch")
        except sync_api.Error:  # the fragment replaced the element while it was read
            shown = None
        selected = page.get_by_role("link", name=f"Details of run {run_id}").count()
        if selected and shown:
            epoch = int(shown.split("/")[0])
            if not seen or epoch != seen[-1]:
                seen.append(epoch)
            if not screenshot_taken and epoch >= EPOCHS // 2 and page.locator(".js-plotly-plot").count() >= 2:
                page.wait_for_timeout(600)
                page.screenshot(path=artifacts_dir / "live-monitor.png", full_page=True)
                screenshot_taken = True
        if status in ("completed", "failed", "cancelled", "lost"):
            break
        page.wait_for_timeout(300)
    if len(set(seen)) < 3:
        page.screenshot(path=artifacts_dir / "live-monitor-failed.png", full_page=True)
    assert status == "completed", f"run {run_id} ended {status}"
    distinct = sorted(set(seen))
    assert len(distinct) >= 3 and seen == sorted(seen), f"epochs seen on the live monitor: {seen}"
    assert navigations(page) == loads and page.evaluate("window.paddyLoaded") is not None  # never reloaded
    assert screenshot_taken

    # Its detail page, once complete: results, curves, confusion matrix.
    page.wait_for_timeout(1500)  # the monitor's next refresh shows it completed
    page.get_by_role("link", name=f"Details of run {run_id}").click()
    page.get_by_role("heading", name=re.compile(r"custom_cnn v\d+ · ✅ completed")).wait_for()
    settle(page, charts=5)
    assert metric(page, "test accuracy").endswith("%")
    try:  # a loaded machine may still be drawing the page: settle counts the last page's charts too
        page.get_by_role("button", name=re.compile("Best checkpoint")).wait_for()
    except sync_api.TimeoutError:
        shoot(page, artifacts_dir / "run-detail-failed.png")
        raise AssertionError(f"no checkpoint button; the run as stored: {api.get(f'/jobs/{run_id}').json()}") from None
    shoot(page, artifacts_dir / "run-detail.png")

    # Promoted to production with a reason: the trainer exports it to ONNX (with its parity
    # check), and the export box offers the model file.
    choose(page, "Alias", "production")
    page.get_by_label("Reason", exact=True).first.fill("first run of the browser test")
    page.locator(".st-key-registry-promote button").click()
    page.get_by_text(f"Promoted to production of {DATASET}").wait_for()
    assert api.get(f"/jobs/{run_id}").json()["aliases"] == ["production"]
    [promotion] = api.get("/registry/history", params={"run_id": run_id}).json()["data"]
    assert (promotion["action"], promotion["reason"]) == ("promote", "first run of the browser test")
    model_button = page.locator(".st-key-export-download button")
    model_button.wait_for(timeout=120_000)
    page.get_by_text("onnxruntime and PyTorch differ by at most").wait_for()
    shoot(page, artifacts_dir / "run-detail-registry.png")
    with page.expect_download() as downloading:
        model_button.click()
    assert downloading.value.suggested_filename == f"{run_id}.onnx"
    exported = OnnxClassifier.load(downloading.value.path())
    assert exported.run_id == run_id and exported.class_names == summary_classes(api, run_id)
    # The trainer is free: a random search trains while the next pages are clicked through.
    queued_search = api.post("/sweeps", json=SEARCH)
    assert queued_search.status_code == 202, queued_search.text
    search_id = queued_search.json()["sweep_id"]

    # A cell of the confusion matrix opens the gallery of that cell's test images.
    summary = api.get(f"/jobs/{run_id}").json()["summary"]
    matrix, classes = summary["confusion_matrix"], summary["class_names"]
    cell = next(i for i, row in enumerate(matrix) if row[i] > 0)
    page.locator(f".st-key-run_detail-cell-{cell}-{cell} button").first.click()
    shown = min(matrix[cell][cell], 24)
    page.get_by_text(f"Images 1–{shown} of {matrix[cell][cell]} matching").wait_for()
    settle(page)
    captions = page.locator('[data-testid="stImage"]').filter(has_text=f"✅ {classes[cell]} ·")
    assert captions.count() == shown
    # Where the run looked: the overlays it kept when it completed replace the thumbnails.
    kept = api.get(f"/jobs/{run_id}/predictions", params={"true_class": classes[cell], "limit": 24}).json()["data"]
    assert any(image["heatmap"] for image in kept)
    page.get_by_text("Show where the run looked (Grad-CAM)").click()
    settle(page)
    assert captions.count() == shown
    assert page.get_by_text("kept no Grad-CAM overlay").count() == 0

    # A prediction with the new run, on a photo from its dataset.
    open_page(page, "Predict")
    photo = next((stack.state_dir / "data" / DATASET / "Brownspot").glob("*.png"))
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(photo))
    page.get_by_text("Show where the run looked (Grad-CAM)").click()
    page.get_by_role("button", name=re.compile("Predict")).click()
    page.locator('[data-testid="stMetricLabel"]', has_text="most likely").wait_for(timeout=90_000)
    settle(page, charts=1)
    assert metric(page, "most likely") in {"Bacterialblight", "Brownspot", "Leafsmut"}
    overlay = page.locator('[data-testid="stImage"]').filter(has_text="where the run looked (Grad-CAM)")
    assert overlay.count() == 1
    assert overlay.locator("img").evaluate("image => image.complete && image.naturalWidth") == 64
    shoot(page, artifacts_dir / "predict.png")

    # A batch prediction of a zip of photos: progress, then a gallery and the CSV to download.
    open_page(page, "Batch predict")
    photos = sorted((stack.state_dir / "data" / DATASET).rglob("*.png"))[::50]
    archive = artifacts_dir / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for photo in photos:
            zipped.write(photo, f"field/{photo.parent.name}-{photo.name}")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(archive))
    page.get_by_role("button", name=re.compile("Classify")).click()
    download_button = page.locator(".st-key-batch-csv button")
    download_button.wait_for(timeout=90_000)
    settle(page)
    assert page.locator('[data-testid="stImage"]').count() == len(photos)
    with page.expect_download() as downloading:
        download_button.click()
    rows = list(csv.reader(downloading.value.path().read_text().splitlines()))
    assert rows[0] == ["file", "class", "Bacterialblight", "Brownspot", "Leafsmut", "error"]
    assert sorted(row[0] for row in rows[1:]) == sorted(f"field/{p.parent.name}-{p.name}" for p in photos)
    for row in rows[1:]:
        assert row[1] in rows[0][2:5] and sum(map(float, row[2:5])) == pytest.approx(1, abs=1e-3)
    shoot(page, artifacts_dir / "batch-predict.png")

    # A small sweep next to it (4 runs), then the compare page overlays the best three runs.
    sweep = api.post(
        "/sweeps",
        json={
            "base": {"model_name": "custom_cnn", "dataset": DATASET, "epochs": 3, "image_size": 64, "patience": 3},
            "grid": {"learning_rate": [0.003, 0.0003], "batch_size": [16, 32]},
        },
    )
    assert sweep.status_code == 202, sweep.text
    for swept in sweep.json()["run_ids"]:
        assert wait_for_run(api, swept, "completed", "failed", timeout_s=300)["status"] == "completed"

    # The search on the Sweeps page: progress, its trials and the best of them, its charts.
    search = wait_for(lambda: finished_search(api, search_id), 300, f"search {search_id} to finish")
    trials = search["trials"]
    # The median pruner judges a run only once two have ended: the first two complete.
    assert len(trials) == 3 and {trial["state"] for trial in trials} <= {"completed", "pruned"}, trials
    open_page(page, "Sweeps")
    choose(page, SWEEP_PICKER, search_id)
    page.get_by_role("heading", name="random search · median pruner · ✅ finished").wait_for()
    page.get_by_role("heading", name="Trials (3)").wait_for()  # the page's last part: drawn whole
    settle(page, charts=3)  # the optimisation history, each trial's curve, parallel coordinates
    assert metric(page, "trials done") == "3 / 3"
    assert metric(page, "pruned") == str(sum(trial["state"] == "pruned" for trial in trials))
    assert metric(page, "best val accuracy") == f"{search['best_value']:.1%}"
    # The trials table, the page's only one: a header row and a row per trial.
    assert page.locator('[data-testid="stDataFrame"] table').get_attribute("aria-rowcount") == "4"
    best = next(trial for trial in trials if trial["value"] == search["best_value"] and trial["state"] == "completed")
    assert (
        page.get_by_role("link", name=re.compile(rf"^Best run {best['run_id']} \(trial {best['number']}")).count() == 1
    )
    assert page.locator('[data-testid="stException"]').count() == 0
    page.get_by_role("heading", name="Sweeps").first.click()  # no input keeps the focus
    shoot(page, artifacts_dir / "sweeps.png")
    open_page(page, "Compare")
    settle(page, charts=6)
    assert page.get_by_role("heading", name="Best run per model").count() == 1
    # The chosen runs' test accuracies with their intervals, and each pair's paired test in words.
    assert page.get_by_role("heading", name="Is the difference real?").count() == 1
    assert page.get_by_text(re.compile(r"on this test set|no significant difference|no difference")).count() >= 1
    # Two runs' differing test images, both ways, each with the two runs' verdicts.
    assert page.get_by_role("heading", name="Where two runs disagree").count() == 1
    only = [
        page.get_by_text(re.compile(rf"^Only {side} \(\w+\) right: \d+ of \d+ images$")).inner_text() for side in "AB"
    ]
    differing = sum(int(re.search(r"right: (\d+) of", text).group(1)) for text in only)
    thumbnails = page.locator('[data-testid="stImage"]').count()
    assert (thumbnails > 0) == (differing > 0) and thumbnails <= differing, (only, thumbnails)
    shoot(page, artifacts_dir / "compare.png")

    open_page(page, "Time filter")
    settle(page, charts=1)
    assert metric(page, "runs started") == "8"  # the job, the search's 3 runs and the grid's 4
    shoot(page, artifacts_dir / "time-filter.png")

    open_page(page, "Run detail")
    settle(page)
    assert navigations(page) == loads  # every page switch stayed inside the one page load


def test_a_dataset_audited_from_the_datasets_page_in_a_browser(stack, page, artifacts_dir: Path):
    page.goto(stack.urls()["dashboard"])
    page.get_by_role("heading", name="Live monitor").wait_for()
    open_page(page, "Datasets")
    choose(page, "Dataset", PLANTED)
    page.get_by_text("Not audited yet").first.wait_for()

    page.get_by_role("button", name=re.compile("Run an audit")).click()
    page.locator('[data-testid="stAlertContentSuccess"]').filter(has_text="Audit queued").wait_for()
    # A trainer audits it; the page shows the report once the recorder has stored it, by itself.
    page.locator('[data-testid="stMetricLabel"]', has_text="label conflicts").wait_for(timeout=240_000)
    settle(page)
    assert int(metric(page, "label conflicts")) >= 1
    assert page.get_by_text(re.compile("^⚠️ label conflict ·")).count() >= 1
    assert page.locator('[data-testid="stImage"] img').count() >= 2  # thumbnails of the copies
    page.wait_for_function(
        "[...document.querySelectorAll('[data-testid=\"stImage\"] img')].every(img => img.complete && img.naturalWidth > 0)"
    )
    shoot(page, artifacts_dir / "datasets.png")
