"""A field's help, bounds, choices and type, read from the model that declares it."""

from shared.schemas import fields
from shared.schemas.jobs import EnsembleSpec, JobSpec

SPEC = JobSpec.model_fields


def test_bounds_are_the_declared_ones_in_order():
    assert fields.bounds(SPEC["epochs"]) == {"ge": 1, "le": 1000}
    assert list(fields.bounds(SPEC["learning_rate"]).items()) == [("gt", 0), ("le", 1)]
    assert fields.bounds(SPEC["dropout"]) == {"ge": 0, "lt": 1}
    assert fields.bounds(SPEC["augment"]) == fields.bounds(SPEC["dataset"]) == {}


def test_within_bounds_keeps_open_bounds_open():
    assert fields.within_bounds(SPEC["learning_rate"], 1) and not fields.within_bounds(SPEC["learning_rate"], 0)
    assert fields.within_bounds(SPEC["dropout"], 0) and not fields.within_bounds(SPEC["dropout"], 1)


def test_choices_are_a_literals_values():
    assert fields.choices(SPEC["augment"]) == ("original", "crops", "flips", "none")
    assert fields.choices(EnsembleSpec.model_fields["voting"]) == ("logits", "softmax")
    assert fields.choices(SPEC["epochs"]) == fields.choices(SPEC["dropout"]) == ()


def test_value_type_leaves_null_aside():
    assert fields.value_type(SPEC["dropout"]) is float and fields.allows_none(SPEC["dropout"])
    assert fields.value_type(SPEC["epochs"]) is int and not fields.allows_none(SPEC["epochs"])
    assert fields.value_type(SPEC["feature_extraction"]) is bool
