"""The recorder's state in a real Redis: what the API's /health reads about MongoDB."""

from pymongo.errors import AutoReconnect

from services.recorder.consumer import Recorder
from services.recorder.settings import RecorderSettings
from shared.recorder_state import read_recorder_states
from tests.utils.events import publish, run_events


def test_a_failing_write_is_reported_then_cleared(settings, db, redis_client):
    recorder = Recorder(redis_client, db, RecorderSettings(consumer_name="rec", block_ms=50, retry_backoff_s=0.01))
    publish(redis_client, run_events("r1"))
    real_write, seen_while_retrying = recorder.writer.write, []

    def fail_once(events):
        if not seen_while_retrying:
            seen_while_retrying.append(None)
            raise AutoReconnect("connection refused")
        seen_while_retrying[0] = read_recorder_states(redis_client)
        real_write(events)

    recorder.writer.write = fail_once
    stops = iter([False, True])
    recorder.run_forever(should_stop=lambda: next(stops))
    [during] = seen_while_retrying[0]
    assert (during["consumer"], during["mongodb"], during["error"]) == ("rec", "unreachable", "AutoReconnect")
    [after] = read_recorder_states(redis_client)
    assert (after["mongodb"], after["error"], after["events_stored"]) == ("ok", None, len(run_events("r1")))
    assert after["last_write_at"] is not None
