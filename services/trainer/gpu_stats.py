"""What the GPUs a trainer uses are doing: utilisation and memory from NVML (nvidia-ml-py).

Heartbeats carry one reading per GPU the trainer can see (shared/schemas/events.py GpuReading);
without NVML — no library, no driver, no GPU, CUDA_VISIBLE_DEVICES empty — there is no reading
at all (None), and nothing in the heartbeat, the run document, the monitor or /metrics.

NVML ignores CUDA_VISIBLE_DEVICES and numbers the devices in PCI bus order, so the visible list
is mapped here: a UUID (or a unique prefix of one, as CUDA accepts) names its device exactly, an
index is taken as NVML's, which is CUDA's only with CUDA_DEVICE_ORDER=PCI_BUS_ID (compose sets
it for the trainers). Like CUDA, the list ends at the first entry that names no device. Pinned trainers
(services/trainer/gpu_pinning.py) set UUIDs, so their readings are always the right GPU's.
"""

import functools
import importlib
import logging
from typing import Any

from shared.schemas.events import GpuReading

log = logging.getLogger(__name__)
MIB = 1024 * 1024


def visible_devices(visible: str | None, uuids: list[str]) -> list[int]:
    """The NVML indices of the devices CUDA shows as cuda:0, cuda:1, … given CUDA_VISIBLE_DEVICES
    (None: unset, every device) and the UUID of every NVML device in NVML's order."""
    if visible is None:
        return list(range(len(uuids)))
    devices: list[int] = []
    for entry in (part.strip() for part in visible.split(",")):
        if entry.isdigit() and int(entry) < len(uuids):
            found = [int(entry)]
        elif entry.startswith("GPU-"):
            found = [i for i, uuid in enumerate(uuids) if uuid.startswith(entry)]
        else:
            found = []
        if len(found) != 1 or found[0] in devices:  # no device, an ambiguous prefix or a repeat: CUDA stops
            break
        devices.append(found[0])
    return devices


class GpuReader:
    """Reads the visible GPUs; `read()` never raises. NVML is started on the first read, and
    when it cannot be (or a read fails) that is logged once and the answer is None."""

    def __init__(self, visible: str | None, nvml: Any = None):
        self._visible = visible
        self._nvml = nvml  # the pynvml module, or a stand-in with its functions
        self._devices: list[tuple[int, Any]] | None = None  # (visible index, NVML handle)
        self._unavailable = False
        self._failing = False

    def read(self) -> list[GpuReading] | None:
        """One reading per visible GPU; None without NVML or GPUs, or when NVML fails."""
        devices = self._start()
        if not devices:
            return None
        nvml = self._nvml
        assert nvml is not None  # _start found it
        try:
            readings = [self._read_one(nvml, index, handle) for index, handle in devices]
        # Any error, not only NVML's (a figure out of range, an older binding): the heartbeat
        # thread calls this, and a heartbeat without figures beats a run that looks lost.
        except Exception as error:
            if not self._failing:  # once until a read works again: a lost GPU must not flood the log
                log.warning("NVML read failed, heartbeats go without GPU figures: %r", error)
            self._failing = True
            return None
        self._failing = False
        return readings

    def close(self) -> None:
        """Shut NVML down again (a process about to fork: its children start their own)."""
        if self._devices is not None and self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError as error:
                log.warning("NVML shutdown failed: %s", error)
        self._devices = None

    def _start(self) -> list[tuple[int, Any]]:
        if self._devices is not None or self._unavailable:
            return self._devices or []
        try:
            nvml = self._nvml = self._nvml or importlib.import_module("pynvml")
        except ImportError:
            return self._absent("nvidia-ml-py is not installed")
        try:
            nvml.nvmlInit()
            handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
            uuids = [_text(nvml.nvmlDeviceGetUUID(handle)) for handle in handles]
        except Exception as error:  # NVMLError mostly (no library, no driver); never the heartbeat's end
            return self._absent(f"NVML unavailable ({error!r})")
        chosen = visible_devices(self._visible, uuids)
        if not chosen:
            return self._absent(f"no GPU visible (of {len(uuids)}; CUDA_VISIBLE_DEVICES={self._visible!r})")
        self._devices = [(position, handles[i]) for position, i in enumerate(chosen)]
        log.info("GPU figures in heartbeats from NVML: %s", ", ".join(uuids[i] for i in chosen))
        return self._devices

    def _absent(self, why: str) -> list[tuple[int, Any]]:
        log.info("no GPU figures in heartbeats: %s", why)
        self._unavailable = True
        return []

    @staticmethod
    def _read_one(nvml: Any, index: int, handle: Any) -> GpuReading:
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        return GpuReading(
            index=index,
            uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
            name=_text(nvml.nvmlDeviceGetName(handle)),
            utilization_pct=float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu),
            memory_used_mib=round(memory.used / MIB, 1),
            memory_total_mib=round(memory.total / MIB, 1),
        )


@functools.cache
def gpu_reader(visible: str | None) -> GpuReader:
    """The process's reader for this CUDA_VISIBLE_DEVICES: NVML starts (or is found absent,
    and says so) once per process, not once per run."""
    return GpuReader(visible)


def _text(value: str | bytes) -> str:
    # Older nvidia-ml-py releases answer bytes.
    return value.decode() if isinstance(value, bytes) else value
