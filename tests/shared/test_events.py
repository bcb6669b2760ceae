import json

import pytest
from pydantic import ValidationError

from shared.schemas.events import EpochFinished, GpuReading, Heartbeat, decode_event, encode_event
from shared.schemas.jobs import JobSpec
from tests.utils.events import h200_reading


def test_event_survives_the_stream_encoding():
    event = EpochFinished(
        run_id="r1", seq=5, epoch=2, train_loss=0.5, train_acc=0.8, val_loss=0.6, val_acc=0.7, epoch_time_sec=1.5
    )
    fields = {k.encode(): v.encode() for k, v in encode_event(event).items()}
    assert decode_event(fields) == event


def test_a_heartbeat_carries_gpu_figures_only_when_there_are_some():
    reading = h200_reading(utilization_pct=87.5, memory_used_mib=1024.0, memory_total_mib=143771.0)
    with_gpu = Heartbeat(run_id="r", seq=1, gpu=[reading])
    assert decode_event(encode_event(with_gpu)) == with_gpu
    without = Heartbeat(run_id="r", seq=2)
    # A CPU trainer's heartbeat is what it was before GPU figures: no key at all.
    assert "gpu" not in json.loads(encode_event(without)["event"])
    assert decode_event(encode_event(without)).gpu is None
    assert decode_event({"event": without.model_dump_json().replace("}", ', "gpu": null}')}).gpu is None
    with pytest.raises(ValidationError):
        GpuReading.model_validate({**reading.model_dump(), "utilization_pct": 101})


def test_every_event_has_identity_and_utc_time():
    first, second = Heartbeat(run_id="r", seq=1), Heartbeat(run_id="r", seq=2)
    assert first.event_id != second.event_id
    assert first.time.utcoffset().total_seconds() == 0


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b'{"type": "nope", "run_id": "r", "seq": 1}',
        b'{"type": "heartbeat", "run_id": "r"}',
        b'{"type": "heartbeat", "run_id": "r", "seq": 1, "schema_version": 9}',
    ],
)
def test_malformed_entries_raise(raw):
    with pytest.raises((ValidationError, ValueError)):
        decode_event({b"event": raw})


def test_entry_without_event_field_raises():
    with pytest.raises(ValueError, match="no 'event' field"):
        decode_event({b"other": b"x"})


def test_job_spec_names_the_bad_field():
    with pytest.raises(ValidationError) as error:
        JobSpec(model_name="resnet9000", dataset="d")
    assert error.value.errors()[0]["loc"] == ("model_name",)
    assert "custom_cnn" in str(error.value)
    with pytest.raises(ValidationError, match="epochs"):
        JobSpec(model_name="custom_cnn", dataset="d", epochs=0)
    with pytest.raises(ValidationError, match="surprise"):
        JobSpec(model_name="custom_cnn", dataset="d", surprise=1)
