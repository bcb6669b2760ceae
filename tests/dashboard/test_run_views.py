"""The pure helpers that turn API runs and epochs into the live monitor's table and curves."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from services.dashboard import run_views

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def run(**fields) -> dict:
    return {
        "run_id": "r1",
        "status": "in_progress",
        "model_name": "custom_cnn",
        "version": "v1",
        "epochs_planned": 5,
        "epochs_done": 0,
        "current_epoch": None,
        "latest": {},
        "start_time": None,
        "heartbeat_at": None,
        "error": None,
        **fields,
    }


@pytest.mark.parametrize(
    ("done", "planned", "expected"),
    [
        (2, 5, 0.4),
        (0, 7, 0.0),
        (3, 3, 1.0),
        (4, 0, 0.0),
        (9, 5, 1.0),
    ],
)
def test_progress_is_the_fraction_of_planned_epochs_done(done, planned, expected):
    assert run_views.progress(run(epochs_done=done, epochs_planned=planned)) == expected


def test_an_early_stopped_completed_run_shows_as_done():
    assert run_views.progress(run(status="completed", epochs_done=14, epochs_planned=30)) == 1.0


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"status": "in_progress", "current_epoch": 3, "epochs_done": 2}, "epoch 3 / 5"),
        ({"status": "in_progress", "current_epoch": 2, "epochs_done": 2}, "epoch 2 / 5"),  # between epochs
        ({"status": "failed", "current_epoch": 2, "epochs_done": 1}, "epoch 1 / 5"),  # epoch 2 never finished
        ({"status": "completed", "current_epoch": 4, "epochs_done": 4}, "epoch 4 / 5"),  # stopped early
        ({"status": "queued"}, "epoch 0 / 5"),
    ],
)
def test_epoch_text_counts_the_running_epoch_only_while_in_progress(fields, expected):
    assert run_views.epoch_text(run(**fields)) == expected


def test_every_status_has_an_icon():
    labels = {status: run_views.status_label(status) for status in run_views.STATUS_ICONS}
    assert labels["failed"] == "❌ failed"
    assert labels["lost"] == "⚠️ lost"
    assert labels["in_progress"] == "🔄 in progress"
    assert run_views.status_label("paused") == "❔ paused"


@pytest.mark.parametrize(
    "heartbeat",
    [
        "2025-06-01T11:59:30Z",
        "2025-06-01T11:59:30+00:00",
        "2025-06-01T13:59:30+02:00",
        "2025-06-01T11:59:30",  # no offset: UTC, as the store writes it
        datetime(2025, 6, 1, 11, 59, 30, tzinfo=UTC),
    ],
)
def test_heartbeat_age_reads_any_iso_time_as_utc(heartbeat):
    assert run_views.heartbeat_age_s(run(heartbeat_at=heartbeat), NOW) == 30.0


@pytest.mark.parametrize(
    ("status", "heartbeat", "expected"),
    [
        ("lost", "2025-06-01T11:50:00Z", 600.0),
        ("completed", "2025-06-01T11:50:00Z", None),  # a finished run's silence means nothing
        ("queued", None, None),
        ("in_progress", "2025-06-01T12:00:01Z", 0.0),  # a trainer clock slightly ahead
    ],
)
def test_heartbeat_age_is_shown_where_silence_matters(status, heartbeat, expected):
    assert run_views.heartbeat_age_s(run(status=status, heartbeat_at=heartbeat), NOW) == expected


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, None),
        (0, "0 s ago"),
        (59.9, "59 s ago"),
        (60, "1 min ago"),
        (3599, "59 min ago"),
        (3600, "1 h ago"),
        (3900, "1 h 5 min ago"),
        (86_400, "1 d ago"),
        (90_000, "1 d 1 h ago"),
    ],
)
def test_format_age(seconds, text):
    assert run_views.format_age(seconds) == text


def test_runs_frame_has_one_row_per_run_in_the_api_order():
    listing = [
        run(
            run_id="new",
            current_epoch=3,
            epochs_done=2,
            start_time="2025-06-01T11:58:00Z",
            heartbeat_at="2025-06-01T11:59:52Z",
            latest={"train_loss": 0.5, "val_loss": 0.6, "train_acc": 0.8, "val_acc": 0.75, "epoch_time_sec": 9.0},
        ),
        run(
            run_id="old",
            status="failed",
            epochs_done=1,
            start_time="2025-06-01T10:00:00Z",
            heartbeat_at="2025-06-01T10:05:00Z",
            error="OutOfMemoryError: CUDA out of memory",
        ),
    ]

    frame = run_views.runs_frame(listing, NOW)

    assert list(frame.columns) == run_views.TABLE_COLUMNS
    assert frame["run_id"].tolist() == ["new", "old"]
    assert frame.iloc[0][["status", "progress", "epoch", "val_acc", "heartbeat"]].tolist() == [
        "🔄 in progress",
        0.4,
        "epoch 3 / 5",
        0.75,
        "8 s ago",
    ]
    assert frame.iloc[1]["error"] == "OutOfMemoryError: CUDA out of memory"
    assert pd.isna(frame.iloc[1]["heartbeat"]) and pd.isna(frame.iloc[1]["val_loss"])
    assert frame["started"].tolist() == [pd.Timestamp("2025-06-01T11:58:00Z"), pd.Timestamp("2025-06-01T10:00:00Z")]
    assert str(frame["started"].dtype).endswith("UTC]")


def test_runs_frame_of_no_runs_still_has_the_columns():
    frame = run_views.runs_frame([], NOW)
    assert frame.empty and list(frame.columns) == run_views.TABLE_COLUMNS


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["completed", "in_progress", "in_progress"], "r1"),  # the newest running one
        (["queued", "failed", "completed"], "r0"),  # nothing running: the newest
        ([], None),
    ],
)
def test_default_run(statuses, expected):
    listing = [run(run_id=f"r{index}", status=status) for index, status in enumerate(statuses)]
    assert run_views.default_run(listing) == expected


def test_run_option_label():
    label = run_views.run_option_label(run(run_id="3f9a", status="lost", version="v3"))
    assert label == "3f9a · custom_cnn v3 · ⚠️ lost"


def epoch(number: int, finished: bool = True) -> dict:
    metrics = (
        {"train_loss": 1 / number, "val_loss": 1.1 / number, "train_acc": 0.5, "val_acc": 0.4, "epoch_time_sec": 3.0}
        if finished
        else dict.fromkeys(run_views.CURVE_METRICS)
    )
    return {
        "run_id": "r1",
        "epoch": number,
        "started_at": NOW - timedelta(seconds=3),
        "finished_at": NOW if finished else None,
        **metrics,
    }


def test_finished_epochs_leave_out_the_running_one():
    epochs = [epoch(2), epoch(1), epoch(3, finished=False)]

    frame = run_views.finished_epochs(epochs)

    assert frame["epoch"].tolist() == [1, 2]
    assert frame["val_loss"].tolist() == pytest.approx([1.1, 0.55])
    assert run_views.running_epoch(epochs) == 3


def test_no_finished_epochs():
    assert run_views.finished_epochs([]).empty
    assert run_views.finished_epochs([epoch(1, finished=False)]).empty
    assert run_views.running_epoch([epoch(1)]) is None


def test_progress_counts_the_part_of_the_running_epoch_done():
    running = run(epochs_done=2, current_epoch=3, progress={"epoch": 3, "batch": 5, "batches": 10})

    assert run_views.epoch_fraction(running) == 0.5
    assert run_views.progress(running) == pytest.approx(0.5)
    assert run_views.epoch_text(running) == "epoch 3 / 5 · batch 5 / 10"
    stale = run(epochs_done=3, current_epoch=4, progress={"epoch": 3, "batch": 10, "batches": 10})
    assert run_views.epoch_fraction(stale) == 0.0  # that epoch has finished since


def test_eta_is_the_epochs_left_at_the_last_epochs_speed():
    running = run(
        epochs_done=2, current_epoch=3, latest={"epoch_time_sec": 20.0}, progress={"epoch": 3, "batch": 1, "batches": 4}
    )

    assert run_views.eta_s(running) == pytest.approx((5 - 2 - 0.25) * 20.0)
    assert run_views.eta_s(run(latest={})) is None
    assert run_views.eta_s(run(status="completed", latest={"epoch_time_sec": 3.0})) is None


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, None), (44.6, "45 s"), (185, "3 min 5 s"), (120, "2 min"), (7800, "2 h 10 min")]
)
def test_format_duration(seconds, text):
    assert run_views.format_duration(seconds) == text


def test_the_apis_heartbeat_age_wins_over_the_clock():
    assert run_views.heartbeat_age_s(run(heartbeat_age_s=4.2, heartbeat_at=NOW - timedelta(hours=1)), NOW) == 4.2
    assert run_views.heartbeat_age_s(run(status="completed", heartbeat_age_s=4.2), NOW) is None


def test_images_per_sec_shows_only_while_training():
    frame = run_views.runs_frame(
        [run(images_per_sec=312.0), run(run_id="r2", status="failed", images_per_sec=300.0)], NOW
    )

    assert frame["images_per_sec"].tolist()[0] == 312.0 and pd.isna(frame["images_per_sec"].tolist()[1])


def test_merge_keeps_the_first_listing_order_and_each_run_once():
    active = [run(run_id="a"), run(run_id="b")]
    ended = [run(run_id="c", status="completed"), run(run_id="a", status="completed")]

    assert [r["run_id"] for r in run_views.merge_runs(active, ended)] == ["a", "b", "c"]


def test_alarms_are_the_failed_and_lost_runs():
    listed = [run(run_id="a"), run(run_id="b", status="failed"), run(run_id="c", status="lost")]
    assert [r["run_id"] for r in run_views.alarms(listed)] == ["b", "c"]


H200 = {"index": 0, "uuid": "GPU-a", "name": "NVIDIA H200", "memory_total_mib": 143_360.0}


def test_a_running_runs_gpus_are_summed_up_and_absent_without_figures():
    gpus = [
        {**H200, "utilization_pct": 87.4, "memory_used_mib": 30_822.4},
        {**H200, "index": 1, "uuid": "GPU-b", "utilization_pct": 3.0, "memory_used_mib": 512.0},
    ]
    assert run_views.gpu_text(run(gpu=gpus)) == (
        "GPU 0 NVIDIA H200: 87 % busy, 30.1 / 140.0 GiB; GPU 1 NVIDIA H200: 3 % busy, 0.5 / 140.0 GiB"
    )
    assert run_views.gpu_text(run(gpu=None)) is None  # a CPU trainer
    assert run_views.gpu_text(run()) is None  # an API from before GPU figures
    assert run_views.gpu_text(run(status="completed", gpu=gpus)) is None  # the GPU is not its own any more
    frame = run_views.runs_frame([run(gpu=gpus[:1]), run(run_id="r2")], NOW)
    assert frame["gpu"].tolist()[0].startswith("GPU 0 NVIDIA H200: 87 % busy") and pd.isna(frame["gpu"].tolist()[1])
