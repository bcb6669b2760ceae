"""The model registry: promotions and demotions through the API, with who (the key's label), when
and why kept in the history; the in-process API against real nx-27017 and redis-server."""

from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from services.api.main import app
from services.api.settings import ApiSettings, SettingsError, get_settings, parse_api_keys
from shared import names
from tests.utils.api import API_KEY, clear_caches, detail, queued_tasks
from tests.utils.documents import stored_run

ALICE_KEY, BOB_KEY = "alice-key-0123456789", "bob-key-0123456789"


@pytest.fixture
def labelled(api_env, client, monkeypatch):
    """The API with PADDY_API_KEYS beside PADDY_API_KEY: clients for alice and bob."""
    monkeypatch.setenv("PADDY_API_KEYS", f"alice:{ALICE_KEY}, bob:{BOB_KEY}")
    clear_caches()
    with (
        TestClient(app, headers={"X-API-Key": ALICE_KEY}) as alice,
        TestClient(app, headers={"X-API-Key": BOB_KEY}) as bob,
    ):
        yield alice, bob


@pytest.fixture
def runs(db) -> dict[str, str]:
    """Completed runs on dataset `leaves`, one still running, one failed."""
    stored_run(db, "run-a", version="v1", metrics={"test_accuracy": 0.8}, evaluation={"accuracy": 0.8, "images": 20})
    stored_run(db, "run-b", version="v2", metrics={"test_accuracy": 0.9}, evaluation={"accuracy": 0.9, "images": 20})
    stored_run(db, "run-running", status="in_progress", version="v3")
    stored_run(db, "run-failed", status="failed", version="v4")
    return {"a": "run-a", "b": "run-b"}


def promote(client, run_id: str, alias: str = "production", reason: str = "best so far"):
    return client.post("/registry/promote", json={"run_id": run_id, "alias": alias, "reason": reason})


def test_promotions_and_demotions_keep_who_when_why_and_the_run_replaced(labelled, client, runs):
    alice, bob = labelled

    first = promote(alice, "run-a", reason="best val accuracy of the sweep")
    assert first.status_code == 200, first.text
    promoted = first.json()
    assert {key: promoted[key] for key in ("dataset", "alias", "action", "run_id", "previous_run_id", "by")} == {
        "dataset": "leaves",
        "alias": "production",
        "action": "promote",
        "run_id": "run-a",
        "previous_run_id": None,
        "by": "alice",
    }
    assert promoted["reason"] == "best val accuracy of the sweep"

    replaced = promote(bob, "run-b", reason="  better on Leafsmut  ").json()
    assert (replaced["run_id"], replaced["previous_run_id"], replaced["by"]) == ("run-b", "run-a", "bob")
    assert replaced["reason"] == "better on Leafsmut"  # blanks around it dropped

    [entry] = client.get("/registry").json()["data"]
    assert {key: entry[key] for key in ("dataset", "alias", "run_id", "by", "reason", "model_name", "version")} == {
        "dataset": "leaves",
        "alias": "production",
        "run_id": "run-b",
        "by": "bob",
        "reason": "better on Leafsmut",
        "model_name": "custom_cnn",
        "version": "v2",
    }
    assert entry["test_accuracy"] == 0.9 and entry["since"] == replaced["at"]
    assert entry["test_accuracy_interval"] == client.get("/jobs/run-b").json()["test_accuracy_interval"]
    assert client.get("/jobs/run-a").json()["aliases"] == []
    assert client.get("/jobs/run-b").json()["aliases"] == ["production"]

    demoted = client.post(
        "/registry/demote", json={"dataset": "leaves", "alias": "production", "reason": "misses field photos"}
    )
    assert demoted.status_code == 200, demoted.text
    assert {key: demoted.json()[key] for key in ("action", "run_id", "previous_run_id", "by")} == {
        "action": "demote",
        "run_id": "run-b",
        "previous_run_id": None,
        "by": "default",  # PADDY_API_KEY's label
    }
    assert client.get("/registry").json() == {"data": [], "count": 0}
    assert client.get("/jobs/run-b").json()["aliases"] == []

    history = client.get("/registry/history").json()
    assert history["count"] == 3
    assert [(e["action"], e["run_id"], e["by"], e["reason"]) for e in history["data"]] == [
        ("demote", "run-b", "default", "misses field photos"),
        ("promote", "run-b", "bob", "better on Leafsmut"),
        ("promote", "run-a", "alice", "best val accuracy of the sweep"),
    ]
    times = [datetime.fromisoformat(e["at"]) for e in history["data"]]
    assert times == sorted(times, reverse=True)
    assert [e["seq"] for e in history["data"]] == [3, 2, 1]
    # A run's history: what moved it, and the promotion that replaced it.
    of_a = client.get("/registry/history", params={"run_id": "run-a"}).json()
    assert [(e["run_id"], e["previous_run_id"]) for e in of_a["data"]] == [("run-b", "run-a"), ("run-a", None)]
    page = client.get("/registry/history", params={"limit": 1, "offset": 1}).json()
    assert page["count"] == 3 and [e["seq"] for e in page["data"]] == [2]
    assert client.get("/registry/history", params={"dataset": "other"}).json() == {"data": [], "count": 0}


def test_candidate_and_production_are_separate_aliases(client, runs):
    assert promote(client, "run-a", "candidate").status_code == 200
    assert promote(client, "run-a", "production").status_code == 200
    assert promote(client, "run-b", "candidate").json()["previous_run_id"] == "run-a"

    listed = client.get("/registry", params={"dataset": "leaves"}).json()
    assert [(e["alias"], e["run_id"]) for e in listed["data"]] == [("candidate", "run-b"), ("production", "run-a")]
    assert client.get("/jobs/run-a").json()["aliases"] == ["production"]
    assert client.get("/registry", params={"dataset": "elsewhere"}).json()["count"] == 0


def test_an_ensemble_is_promoted_under_its_members_dataset(client, db, runs):
    stored_run(db, "run-ens", model_name="ensemble", spec={"model_name": "ensemble", "members": ["run-a", "run-b"]})
    assert promote(client, "run-ens").json()["dataset"] == "leaves"
    db[names.TRAININGS].insert_one({"_id": "run-ens2", "run_id": "run-ens2", "dataset": "other-leaves"})
    stored_run(db, "run-ens2", model_name="ensemble", spec={"model_name": "ensemble", "members": ["run-a"]})
    assert promote(client, "run-ens2").json()["dataset"] == "other-leaves"


def test_only_completed_runs_are_promoted_and_only_held_aliases_demoted(client, db, runs):
    assert promote(client, "no-such-run").status_code == 404
    assert detail(promote(client, "no-such-run")) == "run no-such-run not found"
    for run_id, state in (("run-running", "in_progress"), ("run-failed", "failed")):
        refused = promote(client, run_id)
        assert refused.status_code == 409
        assert detail(refused) == f"run {run_id} is {state}; only completed runs can be promoted"
    assert promote(client, "run-a").status_code == 200
    again = promote(client, "run-a")
    assert again.status_code == 409 and detail(again) == "run run-a is already production of dataset 'leaves'"
    assert client.delete("/jobs/run-b").status_code == 200
    assert detail(promote(client, "run-b")) == "run run-b is archived; it cannot be promoted"

    empty = client.post("/registry/demote", json={"dataset": "leaves", "alias": "candidate", "reason": "r"})
    assert empty.status_code == 409
    assert detail(empty) == "no run is candidate of dataset 'leaves'; nothing to demote"
    assert client.get("/registry/history").json()["count"] == 1  # refusals leave no trace


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"run_id": "run-a", "alias": "production"}, "reason"),
        ({"run_id": "run-a", "alias": "production", "reason": ""}, "reason"),
        ({"run_id": "run-a", "alias": "production", "reason": "   "}, "reason"),
        ({"run_id": "run-a", "alias": "production", "reason": "two\nlines"}, "reason"),
        ({"run_id": "run-a", "alias": "production", "reason": "nul\u0000"}, "reason"),
        ({"run_id": "run-a", "alias": "production", "reason": "x" * 501}, "reason"),
        ({"run_id": "run-a", "alias": "production", "reason": 5}, "reason"),
        ({"run_id": "run-a", "alias": "staging", "reason": "r"}, "alias"),
        ({"run_id": "../etc", "alias": "production", "reason": "r"}, "run_id"),
        ({"run_id": {"$ne": None}, "alias": "production", "reason": "r"}, "run_id"),
        ({"run_id": "run-a", "alias": "production", "reason": "r", "by": "someone"}, "by"),
    ],
)
def test_a_bad_promotion_is_a_422_naming_the_field(client, runs, body, field):
    response = client.post("/registry/promote", json=body)
    assert response.status_code == 422
    assert [error["loc"][-1] for error in response.json()["detail"]] == [field]
    assert client.get("/registry").json()["count"] == 0


def test_a_reason_of_500_characters_is_kept_whole(client, runs):
    assert promote(client, "run-a", reason="é" * 500).json()["reason"] == "é" * 500


def test_writes_need_a_key_and_reads_do_not(anonymous, runs):
    for path, body in (
        ("/registry/promote", {"run_id": "run-a", "alias": "production", "reason": "r"}),
        ("/registry/demote", {"dataset": "leaves", "alias": "production", "reason": "r"}),
    ):
        assert anonymous.post(path, json=body).status_code == 401
        assert anonymous.post(path, json=body, headers={"X-API-Key": "wrong"}).status_code == 401
    assert anonymous.get("/registry").status_code == 200
    assert anonymous.get("/registry/history").status_code == 200


def test_promotion_to_production_queues_an_onnx_export_once(client, redis_client, runs):
    def exports() -> list:
        return [args for task, args in queued_tasks(redis_client, names.BACKGROUND_QUEUE) if task == names.EXPORT_TASK]

    assert promote(client, "run-a", "candidate").json()["export_queued"] is False
    assert exports() == []
    assert promote(client, "run-a", "production").json()["export_queued"] is True
    assert exports() == [["run-a", False]]
    reason = {"dataset": "leaves", "alias": "production", "reason": "again"}
    assert client.post("/registry/demote", json=reason).status_code == 200
    assert promote(client, "run-a", "production").json()["export_queued"] is False  # one is queued already
    assert exports() == [["run-a", False]]


# --- key labels ------------------------------------------------------------------------------


def test_labelled_keys_parse_and_refuse_without_echoing_a_key():
    assert parse_api_keys("alice:k1, bob-2:k:2") == {"alice": "k1", "bob-2": "k:2"}
    for text, message in (
        ("Alice:k1", "entry 1 must be label:key"),
        ("alice", "entry 1 must be label:key"),
        ("alice:k1,:k2", "entry 2 must be label:key"),
        ("alice: ", "entry 1 (alice) has an empty key"),
        ("alice:k1,alice:k2", "label alice is given twice"),
        ("alice:secret-1,bob:secret-1", "entry 2 (bob) repeats the key of another label"),
    ):
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")) as raised:
            parse_api_keys(text)
        assert "secret" not in str(raised.value)


def test_bad_labelled_keys_stop_the_api_naming_the_setting_not_the_key(settings, monkeypatch):
    monkeypatch.setenv("PADDY_API_KEY", API_KEY)
    monkeypatch.setenv("PADDY_API_KEYS", "alice:hidden-1,bob:hidden-1")
    get_settings.cache_clear()
    with pytest.raises(SettingsError, match="PADDY_API_KEYS") as raised:
        get_settings()
    assert "hidden-1" not in str(raised.value)
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("keys", "reason"),
    [
        (f"default:{ALICE_KEY}", "gives the label default"),
        (f"alice:{API_KEY}", "repeats PADDY_API_KEY"),
        ("alice:change-me", "holds the example key"),
    ],
)
def test_labelled_keys_that_clash_with_the_main_key_are_refused(keys, reason):
    settings = ApiSettings(api_key=API_KEY, api_keys=keys, environment="production")
    assert reason in (settings.insecure_reason() or "")


def test_the_main_key_may_have_its_own_label(client, runs, monkeypatch):
    monkeypatch.setenv("PADDY_API_KEY_LABEL", "ci")
    clear_caches()
    with TestClient(app, headers={"X-API-Key": API_KEY}) as labelled_client:
        assert promote(labelled_client, "run-a").json()["by"] == "ci"
