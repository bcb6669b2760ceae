"""The run detail page's registry box and model card against a running API: promote and demote
with a reason, the run's aliases and history shown, errors shown plainly."""

import pytest

from tests.utils.dashboard import RunPublisher, page, table_with, wait_until_shown

pytestmark = pytest.mark.integration
PAGE = "pages/run_detail.py"


@pytest.fixture(scope="module")
def two_runs(api, events) -> tuple[str, str]:
    """Two completed runs on the stack's `tiny` dataset, of their own (other tests' runs keep no alias)."""
    runs = []
    for version in ("v21", "v22"):
        run = RunPublisher(events, version=version, epochs=2).start()
        run.epoch(1).epoch(2).complete(epochs_run=2)
        runs.append(run.run_id)
    wait_until_shown(api, lambda client: all(client.get(f"/jobs/{r}").json()["status"] == "completed" for r in runs))
    return runs[0], runs[1]


def markdown_texts(app) -> list[str]:
    return [element.value for element in app.markdown]


def test_a_run_is_promoted_and_demoted_on_its_page(two_runs, api, api_url, dashboard_env):
    dashboard_env(api_url)
    first, second = two_runs
    app = page(PAGE, {"run_id": first})
    assert "This run holds no alias of dataset `tiny`." in markdown_texts(app)
    assert any(text.startswith(f"# Model card: custom_cnn v21 (run {first})") for text in markdown_texts(app))

    app.button(key="registry.promote").click().run()  # no reason given
    assert [error.value for error in app.error] == ["Give a reason: it is kept in the registry's history."]
    assert api.get("/registry", params={"dataset": "tiny"}).json()["count"] == 0

    app.selectbox(key="registry.promote_alias").select("production")
    app.text_input(key="registry.promote_reason").input("best test accuracy so far")
    app.button(key="registry.promote").click().run()

    assert not app.exception and not app.error, [error.value for error in app.error]
    assert [success.value for success in app.success] == ["Promoted to production of tiny."]
    assert "This run holds 🚀 **production** of dataset `tiny`." in markdown_texts(app)
    [entry] = api.get("/registry", params={"dataset": "tiny"}).json()["data"]
    assert (entry["run_id"], entry["alias"], entry["reason"]) == (first, "production", "best test accuracy so far")
    history = table_with(app, "replaced")
    assert history[["action", "alias", "run", "reason"]].values.tolist() == [
        ["promote", "production", first, "best test accuracy so far"]
    ]

    other = page(PAGE, {"run_id": second})
    other.selectbox(key="registry.promote_alias").select("production")
    other.text_input(key="registry.promote_reason").input("better on Brownspot")
    other.button(key="registry.promote").click().run()
    assert [success.value for success in other.success] == [f"Promoted to production of tiny, replacing run {first}."]

    other.selectbox(key="registry.demote_alias").select("production")
    other.text_input(key="registry.demote_reason").input("rolled back")
    other.button(key="registry.demote").click().run()
    assert [success.value for success in other.success] == ["Demoted from production of tiny."]
    assert "This run holds no alias of dataset `tiny`." in markdown_texts(other)
    assert api.get("/registry", params={"dataset": "tiny"}).json()["count"] == 0
    assert [e["action"] for e in api.get("/registry/history", params={"run_id": second}).json()["data"]] == [
        "demote",
        "promote",
    ]


def test_a_refused_promotion_is_shown_plainly(two_runs, api, api_url, dashboard_env):
    dashboard_env(api_url, api_key=None)
    app = page(PAGE, {"run_id": two_runs[0]})
    app.text_input(key="registry.promote_reason").input("no key")
    app.button(key="registry.promote").click().run()
    assert [error.value for error in app.error] == [
        "The API refused the request: set PADDY_API_KEY for the dashboard to the API's key."
    ]
