"""The model registry: which run each dataset's `candidate` and `production` aliases name, and
every promotion and demotion with who made it, when and why."""

from datetime import datetime
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, Field, StringConstraints

from shared.schemas.jobs import NO_CONTROL_CHARACTERS, STRICT_INPUT, PathText, RunId

Alias = Literal["candidate", "production"]
ALIASES: tuple[str, ...] = get_args(Alias)
RegistryAction = Literal["promote", "demote"]
MAX_REASON_LENGTH = 500
# Why a model moved: one line of text, surrounding blanks dropped.
Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_REASON_LENGTH, pattern=NO_CONTROL_CHARACTERS),
]


class PromotionCreate(BaseModel):
    """Give a completed run (or ensemble) an alias of its dataset; the run holding it before loses it."""

    model_config = STRICT_INPUT

    run_id: RunId = Field(description="a completed training run or ensemble", examples=["3f9a1c0b2d4e"])
    alias: Alias = Field(description="candidate: under evaluation; production: the model in use")
    reason: Reason = Field(description="why, kept in the history", examples=["best val accuracy of the sweep"])


class DemotionCreate(BaseModel):
    """Take an alias of a dataset away from the run that holds it, leaving the alias empty."""

    model_config = STRICT_INPUT

    dataset: PathText = Field(description="the dataset, as the runs' specs name it", examples=["rice-leaf-real"])
    alias: Alias
    reason: Reason = Field(examples=["misses Leafsmut in field photos"])


class RegistryEntryPublic(BaseModel):
    """An alias and the run it names now, with what a reader needs to recognise that run."""

    model_config = {"protected_namespaces": ()}

    dataset: str
    alias: Alias
    run_id: str
    since: datetime = Field(description="when the run got the alias")
    by: str = Field(description="the label of the API key that promoted it")
    reason: str
    model_name: str | None = Field(None, description="null when the run's document is gone")
    version: str | None = None
    test_accuracy: float | None = None
    test_accuracy_interval: list[float] | None = Field(
        None, min_length=2, max_length=2, description="Wilson 95 % interval [low, high]"
    )


class RegistryPublic(BaseModel):
    data: list[RegistryEntryPublic]
    count: int


class RegistryEventPublic(BaseModel):
    """One promotion or demotion, as kept in the history (append-only)."""

    dataset: str
    alias: Alias
    action: RegistryAction
    run_id: str = Field(description="the run promoted to the alias, or demoted from it")
    previous_run_id: str | None = Field(
        None, description="promote: the run that held the alias before (null: it was empty); demote: null"
    )
    by: str = Field(description="the label of the API key that made the change")
    at: datetime
    reason: str
    seq: int = Field(description="grows with every change: the history's order")


class PromotionPublic(RegistryEventPublic):
    """POST /registry/promote: the history entry, and whether an ONNX export was queued."""

    export_queued: bool = Field(
        description="promoted to production without an export (or after a failed one): one was queued"
    )


class RegistryHistoryPublic(BaseModel):
    data: list[RegistryEventPublic] = Field(description="newest first")
    count: int = Field(description="every entry matching the filters")
