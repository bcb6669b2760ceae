"""The paired verdicts in words, and how runs are named in them (pure logic)."""

from services.api.pairing import paired_comparisons, verdict
from tests.utils.events import paired_rights, predictions_event


def kept(run_id: str, right: list[bool], split_hash: str = "split-1") -> dict:
    """A test_predictions document as the recorder stores it."""
    return predictions_event(run_id, 1, right, split_hash=split_hash).model_dump()


def test_verdicts_name_the_better_run_or_how_many_images_differ():
    assert verdict("v1", "v2", 0, 12, 0.00049) == "v2 is better than v1 on this test set (p < 0.001)"
    assert verdict("v1", "v2", 7, 0, 1 / 64) == "v1 is better than v2 on this test set (p = 0.0156)"
    assert verdict("v1", "v2", 1, 0, 1.0) == "no significant difference: 1 image differs (p = 1)"
    assert verdict("v1", "v2", 2, 1, 1.0) == "no significant difference: 3 images differ (p = 1)"


def test_runs_of_one_name_are_told_apart_by_their_ids():
    a, b = paired_rights(both_right=5, only_a=0, only_b=8, both_wrong=1)
    runs = [
        {"run_id": "r1", "model_name": "custom_cnn", "version": "v1"},
        {"run_id": "r2", "model_name": "custom_cnn", "version": "v1"},
    ]
    [pair] = paired_comparisons(runs, {"r1": kept("r1", a), "r2": kept("r2", b)})
    assert pair.sentence == "run r2 is better than run r1 on this test set (p = 0.00781)"


def test_only_images_both_runs_were_tested_on_are_counted():
    a, b = paired_rights(both_right=3, only_a=1, only_b=2, both_wrong=0)
    runs = [{"run_id": "r1", "model_name": "m", "version": "v1"}, {"run_id": "r2", "model_name": "m", "version": "v2"}]
    shorter = kept("r2", b)
    shorter["predictions"] = shorter["predictions"][:-1]  # its last image was unreadable
    [pair] = paired_comparisons(runs, {"r1": kept("r1", a), "r2": shorter})
    assert (pair.images, pair.both_right, pair.only_a_right, pair.only_b_right, pair.both_wrong) == (5, 3, 1, 1, 0)
