"""bench/train_throughput.py: the bare step next to Paddy's loop, and the tables bench/gpu_check.sh reads."""

import pytest

from bench.train_throughput import EFFICIENCY_GOAL, main, print_table
from shared.datasets.synth import synthesize_dataset


def loop_result(loop: str, epoch_s: list[float], epoch_cpu_s: list[float], **extra) -> dict:
    return {
        "model": "mobilenet_v2",
        "loop": loop,
        "malloc_tuned": loop == "paddy",
        "train_images": 60,
        "epoch_s": epoch_s,
        "epoch_cpu_s": epoch_cpu_s,
        "decode_s": None,
        "decoded_images": None,
        "peak_rss_mib": 1000.0,
        "cuda_peak_mib": None,
        **extra,
    }


def table_rows(lines: list[str], first_column: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the printed table whose header starts with first_column."""
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_column} |"))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return header, rows


def test_efficiency_is_paddys_steady_rate_over_the_bare_steps(capsys):
    reference = loop_result("reference", [20.0, 10.0, 10.0], [40.0, 20.0, 20.0], workers=2)
    # Steady epochs (2 and 3): Paddy 2 + 3 s, bare 2 + 2 s for the same 60 images.
    paddy = loop_result(
        "paddy",
        [4.0, 2.0, 3.0],
        [8.0, 4.0, 5.0],
        decode_s=1.0,
        decoded_images=100,
        bare_epoch_s=[3.0, 2.0, 2.0],
        bare_epoch_cpu_s=[6.0, 4.0, 4.0],
    )
    print_table([(reference, paddy)])
    lines = capsys.readouterr().out.splitlines()

    header, rows = table_rows(lines, "model")
    assert {"model", "loop", "steady img/s"} <= set(header)  # what gpu_check.sh's figure reads
    loops = [row[header.index("loop")] for row in rows]
    assert loops[0] == "reference" and loops[1].startswith("paddy") and loops[2].startswith("bare")
    assert [row[header.index("steady img/s")] for row in rows] == ["6.0", "24.0", "30.0"]

    header, rows = table_rows(lines, "model | Paddy steady img/s")
    assert rows == [["mobilenet_v2", "24.0", "30.0", "0.80", "75", "67", "0.89", "1.00 0.67"]]
    assert lines[-1] == (
        f"pipeline efficiency mobilenet_v2: 0.80 (median epoch pair 0.83, CPU time 0.89); "
        f"goal ≥ {EFFICIENCY_GOAL}: not met"
    )


def test_without_bare_epochs_no_efficiency_is_printed(capsys):
    paddy = loop_result("paddy", [4.0, 2.0], [8.0, 4.0], decode_s=1.0, decoded_images=100, bare_epoch_s=[])
    print_table([(None, paddy)])
    out = capsys.readouterr().out

    assert "pipeline efficiency" not in out and "Paddy / reference" not in out
    assert "| mobilenet_v2 | paddy (malloc tuned) |" in out


@pytest.mark.timeout(60)
def test_the_bare_step_runs_alternating_with_paddys_loop_on_tiny_images(tmp_path, capsys):
    synthesize_dataset(tmp_path / "data", per_class=6, size=32, seed=3)
    main(
        [
            "--models",
            "custom_cnn",
            "--data",
            str(tmp_path / "data"),
            "--image-size",
            "32",
            "--batch-size",
            "4",
            "--epochs",
            "3",
            "--threads",
            "1",
            "--device",
            "cpu",
            "--no-reference",
        ]
    )
    lines = capsys.readouterr().out.splitlines()

    header, rows = table_rows(lines, "model")
    assert [row[header.index("loop")] for row in rows] == [
        "paddy (malloc tuned)",
        "bare (malloc tuned) (in Paddy's process)",
    ]
    assert all(float(row[header.index("steady img/s")]) > 0 for row in rows)
    _header, rows = table_rows(lines, "model | Paddy steady img/s")
    assert len(rows) == 1 and len(rows[0][-1].split()) == 2  # epochs 2 and 3: two steady pairs
    assert lines[-1].startswith("pipeline efficiency custom_cnn: ")
