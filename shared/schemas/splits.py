"""How a run's images were split: what its run_started event, `status` and `trainings` documents
record, so that anyone reading an accuracy can tell which images it was measured on and whether
copies of a test photo may have been trained on."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SplitMethod = Literal["grouped", "random"]
# Where a grouped split's groups came from, first found first (shared/datasets/splits.py).
GroupSource = Literal["groups.csv", "group_pattern", "audit", "images"]


class SplitRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: SplitMethod = Field(
        description="grouped: every group (copies of one photo) in one split; random: image by image (may leak)"
    )
    split_seed: int = Field(ge=0, description="draws the split; runs on one dataset share it whatever their seed")
    group_source: GroupSource | None = Field(
        None,
        description="groups.csv beside the class folders, the job's group_pattern, the dataset audit's copy "
        "groups, or images (each its own group); null for a random split",
    )
    groups: int | None = Field(None, ge=0, description="distinct groups; null for a random split")
    folds: int | None = Field(None, description="k of k-fold cross-validation; null for one train/val/test split")
    fold: int | None = Field(None, description="the fold tested on (0-based); val is the next fold")
    split_hash: str = Field(description="hash of each file's split (and group): equal hashes, equal test images")

    @property
    def may_leak(self) -> bool:
        """Copies of a test photo may be in training: nothing kept them together."""
        return self.method == "random"
