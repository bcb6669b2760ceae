"""bench/gpu_check.sh on a machine without CUDA: its GPU parts are skipped, it says so, exits 0."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "gpu_check.sh"


@pytest.mark.skipif(Path("/dev/nvidiactl").exists(), reason="with a GPU the script runs its full check (minutes)")
def test_without_cuda_every_gpu_part_is_skipped_and_the_table_says_so():
    result = subprocess.run(
        ["bash", str(SCRIPT)],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "GPU: none (torch.cuda.is_available() is false)" in lines
    table = lines[lines.index("| part | status | seconds | key figure |") :]
    rows = {row.split(" | ")[0].strip("| "): row for row in table[2:] if row.startswith("| ")}
    assert set(rows) == {"cuda-tests", "throughput", "bf16-accuracy"}
    assert all("| skipped | 0 | no CUDA device" in row for row in rows.values()), rows
    assert re.search(r"no CUDA device: [1-9][0-9]* files of CUDA-only tests not run", rows["cuda-tests"])
    assert lines[-1].startswith("CUDA parts skipped: no CUDA device here.")


def test_the_script_refuses_unknown_options():
    result = subprocess.run(["bash", str(SCRIPT), "--fast"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "usage:" in result.stderr
