"""bench/head_sweep.py: each run trains with and without the frozen-feature cache, the cached
sweep computes the features once, and the comparison lines are printed."""

import logging
import re
import sys

from bench import head_sweep
from shared.datasets.synth import synthesize_dataset


def test_the_bench_trains_each_run_both_ways_and_compares_them(tmp_path, monkeypatch, capsys, caplog):
    synthesize_dataset(tmp_path / "leaves", per_class=8, size=32, seed=5)
    arguments = ["--data", str(tmp_path / "leaves"), "--image-size", "32", "--epochs", "2", "--runs", "2"]
    arguments += ["--seeds", "42", "--pretrain-images", "6", "--pretrain-epochs", "1"]
    monkeypatch.setattr(sys, "argv", ["head_sweep", *arguments])
    with caplog.at_level(logging.INFO, logger="services.trainer.feature_cache"):
        head_sweep.main()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("backbone: mobilenet_v2 trained whole on 18 synthesized leaves")
    for mode in head_sweep.MODES:
        runs = [line for line in lines if line.startswith(f"  seed 42 {mode} ")]
        assert len(runs) == 2 and all(re.search(r"test [\d.]+, val loss [\d.]+, +[\d.]+ s$", run) for run in runs)
    # The cached sweep computed its features in its first run and read them in its second.
    messages = [record.getMessage() for record in caplog.records]
    assert sum("computed in" in message for message in messages) == 1
    assert sum(message.endswith("from memory") for message in messages) == 1
    assert re.fullmatch(r"speed-up: [\d.]+× \(goal ≥ 10×\)", lines[-2])
    assert re.fullmatch(r"test accuracy, cached − uncached over 2 paired runs: [+-][\d.]+ .*", lines[-1])
