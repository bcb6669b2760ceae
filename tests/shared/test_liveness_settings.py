"""The liveness timings are checked together: a job is delivered again only after its lease has
expired, and a run shows `lost` no later than that."""

import re

import pytest
from pydantic import ValidationError

from shared.settings import LivenessSettings


def test_the_defaults_agree():
    settings = LivenessSettings()
    assert settings.lease_ttl_s + settings.heartbeat_interval_s <= settings.visibility_timeout_s
    assert (
        settings.heartbeat_timeout_s + settings.reap_interval_s + settings.heartbeat_interval_s
        <= settings.visibility_timeout_s
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        # The job would come back to a trainer while the paused one still holds the lease.
        ({"PADDY_LEASE_TTL_S": "55"}, "PADDY_LEASE_TTL_S + PADDY_HEARTBEAT_INTERVAL_S"),
        # The job would come back before its run shows lost (the old default: 120 s against 60 s).
        ({"PADDY_HEARTBEAT_TIMEOUT_S": "120"}, "PADDY_HEARTBEAT_TIMEOUT_S + PADDY_REAP_INTERVAL_S"),
        ({"PADDY_VISIBILITY_TIMEOUT_S": "30"}, "PADDY_VISIBILITY_TIMEOUT_S (30)"),
        # One late renewal would lose the lease; one late heartbeat would make the run lost.
        ({"PADDY_HEARTBEAT_INTERVAL_S": "20"}, "twice PADDY_HEARTBEAT_INTERVAL_S (20)"),
    ],
)
def test_timings_that_disagree_refuse_to_start(monkeypatch, env, named):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=re.escape(named)):
        LivenessSettings()


def test_short_timings_for_tests_agree(monkeypatch):
    for name, value in {
        "PADDY_HEARTBEAT_INTERVAL_S": "1",
        "PADDY_LEASE_TTL_S": "3",
        "PADDY_VISIBILITY_TIMEOUT_S": "6",
        "PADDY_HEARTBEAT_TIMEOUT_S": "4",
        "PADDY_REAP_INTERVAL_S": "0.5",
    }.items():
        monkeypatch.setenv(name, value)
    assert LivenessSettings().lease_ttl_s == 3
