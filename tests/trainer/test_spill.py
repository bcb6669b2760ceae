"""The spill file on its own: lines come back in the order written, and it goes once drained."""

import json

import pytest

from services.trainer.spill import SpillFile, earlier_spill_files, spill_path


def test_lines_come_back_oldest_first_across_appends(tmp_path):
    spill = SpillFile(tmp_path / "run" / "unsent.jsonl")  # its directory is made on first append
    spill.append(["a", "b", "c"])
    assert spill.take(2) == ["a", "b"]
    spill.append(["d"])
    assert len(spill) == 2
    assert spill.take(10) == ["c", "d"]
    assert spill.take(10) == [] and len(spill) == 0


def test_what_is_appended_is_on_disk_as_json_lines(tmp_path):
    spill = SpillFile(tmp_path / "unsent.jsonl")
    events = [{"seq": n, "type": "heartbeat"} for n in range(1, 4)]
    spill.append([json.dumps(e) for e in events])
    # Another reader (a person, a later process) sees every event, one per line.
    assert [json.loads(line) for line in spill.path.read_text().splitlines()] == events


def test_the_file_is_removed_only_once_every_line_was_taken(tmp_path):
    spill = SpillFile(tmp_path / "unsent.jsonl")
    spill.append(["a", "b"])
    spill.take(1)
    assert not spill.remove_if_drained() and spill.path.is_file()
    spill.take(1)
    assert spill.remove_if_drained() and not spill.path.exists()
    spill.append(["c"])  # a later outage starts a fresh file
    assert spill.path.read_text() == "c\n" and spill.take(5) == ["c"]


def test_rest_and_replace_with_keep_what_was_not_taken(tmp_path):
    spill = SpillFile(tmp_path / "unsent.jsonl")
    spill.append(["a", "b", "c"])
    spill.take(1)
    assert spill.rest() == ["b", "c"] and len(spill) == 2  # rest takes nothing
    spill.replace_with(["a", "b", "c", "d"])  # e.g. the batch in flight put back in front
    assert spill.path.read_text() == "a\nb\nc\nd\n" and spill.take(9) == ["a", "b", "c", "d"]
    assert not list(tmp_path.glob("*.partial"))


def test_a_torn_last_line_is_reported_not_sent(tmp_path):
    spill = SpillFile(tmp_path / "unsent.jsonl")
    spill.append(["a"])
    with open(spill.path, "ab") as file:
        file.write(b'{"trunc')
    spill._unread += 1  # as if that line had been counted, then cut by a full disk
    assert spill.take(1) == ["a"]
    with pytest.raises(OSError, match="torn line"):
        spill.take(1)


def test_each_attempt_has_its_own_file(tmp_path):
    assert spill_path(tmp_path, 1) != spill_path(tmp_path, 2)
    assert spill_path(tmp_path, 2).parent == tmp_path


def test_earlier_attempts_files_are_found_oldest_first_and_reopened_whole(tmp_path):
    for attempt in (3, 1, 2, 10):
        SpillFile(spill_path(tmp_path, attempt)).append([f"attempt {attempt}"])
    (tmp_path / "unsent-events.x.jsonl").write_text("not ours\n")
    assert earlier_spill_files(tmp_path, attempt=3) == [spill_path(tmp_path, 1), spill_path(tmp_path, 2)]

    with open(spill_path(tmp_path, 1), "ab") as file:
        file.write(b"b\n" + b'{"torn')  # its trainer was killed in the middle of an append
    left = SpillFile.reopen(spill_path(tmp_path, 1))
    assert len(left) == 2 and left.take(5) == ["attempt 1", "b"]
    assert spill_path(tmp_path, 1).read_bytes() == b"attempt 1\nb\n"  # the torn tail is cut off
