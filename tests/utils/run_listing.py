"""One run listing that uses every filter: the query tests of each store dialect build from it."""

from datetime import UTC, datetime

from shared.run_queries import RunListing

AFTER = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BEFORE = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
EVERY_FILTER = RunListing(
    statuses=["failed", "completed", "failed"],
    model_name="resnet50",
    version="v2",
    sweep_id="s1",
    started_after=AFTER,
    started_before=BEFORE,
    min_metrics={"val_accuracy": 0.8},
)
