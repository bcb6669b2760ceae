"""/metrics counts the trainers' refreshes of a running job's broker message that found none."""

from shared import names
from tests.utils.api import metric_values

METRIC = "paddy_visibility_refresh_misses_total"


def test_metrics_count_the_missed_visibility_refreshes(client, redis_client):
    assert metric_values(client.get("/metrics").text)[METRIC] == 0
    redis_client.incrby(names.VISIBILITY_MISSES_KEY, 3)  # as services/trainer/visibility.py counts them
    response = client.get("/metrics")
    assert metric_values(response.text)[METRIC] == 3
    assert f"# TYPE {METRIC} counter" in response.text
