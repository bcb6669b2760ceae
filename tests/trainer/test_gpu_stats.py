"""The NVML reader: which devices CUDA_VISIBLE_DEVICES shows, and readings that never raise.

A stand-in with pynvml's functions plays the library (the logic between NVML and a heartbeat
is what is tested); the real nvidia-ml-py on this CPU machine must answer None.
"""

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from services.trainer.events import EventPublisher, Heartbeater
from services.trainer.gpu_stats import GpuReader, visible_devices
from shared import names
from shared.schemas.events import GpuReading, Heartbeat, decode_event
from tests.utils.waiting import wait_for

UUIDS = ["GPU-aaaa1111", "GPU-bbbb2222", "GPU-bbbb3333"]
MIB = 1024 * 1024


class FakeNvml:
    """pynvml's calls the reader makes, over three GPUs; `broken` makes reads fail."""

    class NVMLError(Exception):
        pass

    def __init__(self, init_error: bool = False):
        self.init_error = init_error
        self.broken = False
        self.shutdowns = 0

    def nvmlInit(self) -> None:
        if self.init_error:
            raise self.NVMLError("Driver Not Loaded")

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(UUIDS)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return UUIDS[handle]

    def nvmlDeviceGetName(self, handle: int) -> bytes:
        return b"NVIDIA H200"  # older releases answer bytes

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:
        if self.broken:
            raise self.NVMLError("GPU is lost")
        return SimpleNamespace(gpu=10 * (handle + 1), memory=5)

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(used=(handle + 1) * 1024 * MIB, total=143_771 * MIB, free=0)


@pytest.mark.parametrize(
    ("visible", "expected"),
    [
        (None, [0, 1, 2]),  # unset: every GPU, in NVML's order
        ("2,0", [2, 0]),
        (" 1 ", [1]),
        ("GPU-aaaa", [0]),  # a unique UUID prefix, as CUDA accepts
        ("GPU-bbbb3333,0", [2, 0]),
        ("", []),  # set and empty: no GPU
        ("-1", []),
        ("0,7,1", [0]),  # CUDA stops at the first entry that names no device
        ("GPU-bbbb", []),  # ambiguous prefix
        ("1,1", [1]),
        ("MIG-1234", []),
    ],
)
def test_visible_devices_follow_cuda_visible_devices(visible, expected):
    assert visible_devices(visible, UUIDS) == expected


def test_a_reading_per_visible_gpu_numbered_as_cuda_numbers_them():
    readings = GpuReader("GPU-bbbb3333,0", nvml=FakeNvml()).read()
    assert readings == [
        GpuReading(
            index=0,
            uuid="GPU-bbbb3333",
            name="NVIDIA H200",
            utilization_pct=30.0,
            memory_used_mib=3072.0,
            memory_total_mib=143771.0,
        ),
        GpuReading(
            index=1,
            uuid="GPU-aaaa1111",
            name="NVIDIA H200",
            utilization_pct=10.0,
            memory_used_mib=1024.0,
            memory_total_mib=143771.0,
        ),
    ]


def test_without_a_driver_or_a_visible_gpu_there_is_no_reading_and_one_log_line(caplog):
    for reader in (GpuReader(None, nvml=FakeNvml(init_error=True)), GpuReader("", nvml=FakeNvml())):
        with caplog.at_level(logging.INFO, logger="services.trainer.gpu_stats"):
            assert reader.read() is None and reader.read() is None
        assert len([r for r in caplog.records if "no GPU figures" in r.message]) == 1
        caplog.clear()


def test_a_failing_read_is_none_logged_once_and_later_reads_recover(caplog):
    nvml = FakeNvml()
    reader = GpuReader(None, nvml=nvml)
    nvml.broken = True
    with caplog.at_level(logging.WARNING, logger="services.trainer.gpu_stats"):
        assert reader.read() is None and reader.read() is None
    assert len(caplog.records) == 1 and "GPU is lost" in caplog.records[0].message
    nvml.broken = False
    assert [r.index for r in reader.read() or []] == [0, 1, 2]
    # Nor does a figure out of range end the heartbeat thread that reads.
    nvml.nvmlDeviceGetUtilizationRates = lambda handle: SimpleNamespace(gpu=250)
    assert reader.read() is None


def test_close_shuts_nvml_down_and_a_later_read_starts_it_again():
    nvml = FakeNvml()
    reader = GpuReader(None, nvml=nvml)
    reader.read()
    reader.close()
    assert nvml.shutdowns == 1
    assert len(reader.read() or []) == 3


@pytest.mark.skipif(Path("/dev/nvidiactl").exists(), reason="an NVIDIA driver is present")
def test_the_real_nvml_on_a_machine_without_a_gpu_answers_none():
    reader = GpuReader(None)  # imports pynvml (nvidia-ml-py, the trainer extra)
    assert reader.read() is None
    assert reader.read() is None  # found absent once, not retried on every heartbeat


def test_heartbeats_carry_what_the_reader_reads(tmp_path, redis_client):
    readings = GpuReader(None, nvml=FakeNvml()).read()
    publisher = EventPublisher(redis_client, "r1", 1, spill_path=tmp_path / "spill.jsonl")
    with Heartbeater(publisher, 0.05, gpus=lambda: readings):
        wait_for(lambda: redis_client.xlen(names.EVENTS_STREAM) >= 2, 5, "two heartbeats")
    publisher.close()
    events = [decode_event(fields) for _id, fields in redis_client.xrange(names.EVENTS_STREAM)]
    assert events and all(isinstance(e, Heartbeat) and e.gpu == readings for e in events)
