"""bench/real_photos.py: every fold of every recipe runs, and the table ends with the best line."""

import re
import sys

from bench import real_photos


def test_the_bench_cross_validates_each_recipe_and_names_the_best(monkeypatch, capsys):
    arguments = ["--synth-strips", "6", "--strip-size", "32", "--folds", "3", "--set", "epochs=1"]
    monkeypatch.setattr(sys, "argv", ["real_photos", *arguments, "--recipes", "default", "letterbox-96x320"])
    real_photos.main()
    lines = capsys.readouterr().out.splitlines()
    for recipe in ("default", "letterbox-96x320"):
        assert sum(line.startswith(f"  {recipe} fold ") for line in lines) == 3, lines
        [row] = [line for line in lines if line.startswith(f"{recipe} ")]
        mean, low, high = re.match(rf"{recipe}\s+([\d.]+)\s+\[([\d.]+), ([\d.]+)\]", row).groups()
        assert 0 <= float(low) <= float(mean) <= float(high) <= 1
    best = re.fullmatch(r"best: (\S+) mean ([\d.]+) \[([\d.]+), ([\d.]+)\]", lines[-1])
    assert best and best.group(1) in ("default", "letterbox-96x320")


def test_settings_for_every_recipe_are_read_as_json_where_they_can_be():
    assert real_photos.parse_setting("epochs=60") == ("epochs", 60)
    assert real_photos.parse_setting("image_size=[96, 320]") == ("image_size", [96, 320])
    assert real_photos.parse_setting("resize=letterbox") == ("resize", "letterbox")
    assert real_photos.parse_setting("tta=true") == ("tta", True)
