"""The new job form: inputs from a model's defaults, the body it posts, sweep grids."""

import pytest

from services.dashboard import job_form
from shared.schemas.jobs import JobSpec

DEFAULTS = JobSpec(model_name="resnet50", dataset="-").model_dump(exclude={"model_name", "dataset", "version"})


def test_every_default_gets_an_input_main_ones_first():
    fields = job_form.form_fields(DEFAULTS)

    names = [name for name, _, _ in fields]
    assert names[: len(job_form.MAIN_FIELDS)] == list(job_form.MAIN_FIELDS)
    assert sorted(names) == sorted(DEFAULTS)
    kinds = {name: kind for name, kind, _ in fields}
    assert kinds["epochs"] == "int" and kinds["learning_rate"] == "float"
    assert kinds["feature_extraction"] == "bool" and kinds["dropout"] == "optional_float"
    assert kinds["augment"] == "choice" and kinds["weights"] == "text"


def test_the_spec_holds_only_what_differs_from_the_defaults():
    values = {**DEFAULTS, "epochs": 5, "dropout": None}

    spec = job_form.job_spec("resnet50", " rice ", values, DEFAULTS, version="v7")

    assert spec == {"model_name": "resnet50", "dataset": "rice", "epochs": 5, "dropout": None, "version": "v7"}
    JobSpec.model_validate(spec)  # what the API will accept


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs": 0}, "epochs: must be at least 1"),
        ({"learning_rate": 0.0}, "learning_rate: must be above 0"),
        ({"dropout": 1.0}, "dropout: must be at least 0 and below 1"),
    ],
)
def test_values_the_api_would_refuse_are_named(change, message):
    with pytest.raises(ValueError, match=message):
        job_form.job_spec("resnet50", "rice", {**DEFAULTS, **change}, DEFAULTS)


def test_a_dataset_is_required():
    with pytest.raises(ValueError, match="dataset: name a dataset folder"):
        job_form.job_spec("resnet50", "  ", DEFAULTS, DEFAULTS)


def test_grids_parse_typed_values_and_skip_empty_fields():
    grid = job_form.parse_grid(
        {"learning_rate": "0.001, 3e-4,0.001", "batch_size": "16,32", "dropout": "none, 0.3", "epochs": " "}
    )

    assert grid == {"learning_rate": [0.001, 0.0003], "batch_size": [16, 32], "dropout": [None, 0.3]}


def test_a_grid_value_of_the_wrong_type_is_named():
    with pytest.raises(ValueError, match="batch_size: '16, 3.5' is not a comma-separated list of whole numbers"):
        job_form.parse_grid({"batch_size": "16, 3.5"})


def test_every_bounded_field_is_checked_as_jobspec_checks_it():
    with pytest.raises(ValueError, match=r"^image_size: each side must be at least 32 and at most 1024$"):
        job_form.job_spec("resnet50", "rice", {**DEFAULTS, "image_size": "16"}, DEFAULTS)
    with pytest.raises(ValueError, match=r"^dropout: must be at least 0 and below 1 \(leave empty for none\)$"):
        job_form.job_spec("resnet50", "rice", {**DEFAULTS, "dropout": 1.0}, DEFAULTS)


def test_inputs_take_their_range_help_and_choices_from_jobspec():
    assert job_form.input_range("epochs") == (1, 1000)
    assert job_form.input_range("learning_rate") == (0.0, 1.0)
    assert job_form.help_text("patience") == JobSpec.model_fields["patience"].description
    assert job_form.choices("augment") == ("original", "crops", "flips", "none")


@pytest.mark.parametrize(
    ("text", "sent"), [("224", None), ("128", 128), ("96x320", [96, 320]), (" 96 × 320 ", [96, 320]), ("", None)]
)
def test_the_image_size_is_a_side_or_height_x_width(text, sent):
    """224 is resnet50's default (left out of the body); empty: the model's default."""
    spec = job_form.job_spec("resnet50", "rice", {**DEFAULTS, "image_size": text}, DEFAULTS)
    assert spec.get("image_size") == sent
    assert job_form.field_kind("image_size") == "size"
    JobSpec.model_validate(spec)


@pytest.mark.parametrize("text", ["96x", "96x320x3", "big", "96,320", "16x320", "96x5000"])
def test_an_image_size_that_is_neither_is_named(text):
    with pytest.raises(ValueError, match="^image_size: "):
        job_form.job_spec("resnet50", "rice", {**DEFAULTS, "image_size": text}, DEFAULTS)


def test_an_optional_text_field_left_empty_is_none():
    assert "group_pattern" not in job_form.job_spec("resnet50", "rice", {**DEFAULTS, "group_pattern": ""}, DEFAULTS)
    spec = job_form.job_spec("resnet50", "rice", {**DEFAULTS, "group_pattern": r"(?P<group>IMG_\d+)"}, DEFAULTS)
    assert JobSpec.model_validate(spec).group_pattern == r"(?P<group>IMG_\d+)"
