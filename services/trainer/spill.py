"""Events that waited too long for Redis, kept on disk until it is back (see events.py).

One file per attempt in the run's directory, one event (its JSON) per line, in seq order.
Lines are appended in batches, each batch fsync'd before the events leave memory, and taken
back oldest first; the file is removed once every line has been taken and sent.
"""

import os
from pathlib import Path

# In the run's directory (checkpoints.run_dir), next to its checkpoints.
SPILL_FILE = "unsent-events.{attempt}.jsonl"


def spill_path(run_dir: Path, attempt: int) -> Path:
    return Path(run_dir) / SPILL_FILE.format(attempt=attempt)


def earlier_spill_files(run_dir: Path, attempt: int) -> list[Path]:
    """Spill files earlier attempts left behind (their trainer died before Redis came back),
    oldest attempt first: the next attempt sends them before its own events."""
    found = []
    for path in Path(run_dir).glob(SPILL_FILE.format(attempt="*")):
        number = path.name.split(".")[1]
        if number.isdigit() and int(number) < attempt:
            found.append((int(number), path))
    return [path for _number, path in sorted(found)]


class SpillFile:
    """An append-only queue of lines on disk with a read cursor kept in memory.

    Not thread-safe: the publisher calls it under its own lock.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._read_offset = 0  # bytes of the file already taken
        self._unread = 0  # lines appended but not taken yet

    @classmethod
    def reopen(cls, path: Path) -> "SpillFile":
        """A file another publisher left, its lines all unread. A torn last line (its writer
        killed mid-append, so that batch never left its memory as sent) is cut off."""
        spill = cls(path)
        data = spill.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) < len(data):
            with open(spill.path, "r+b") as file:
                file.truncate(len(complete))
        spill._unread = complete.count(b"\n")
        return spill

    def __len__(self) -> int:
        return self._unread

    def append(self, lines: list[str]) -> None:
        """Add lines after those already there, on disk (fsync'd) when this returns."""
        if not lines:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = "".join(line + "\n" for line in lines).encode()
        with open(self.path, "ab") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        self._unread += len(lines)

    def take(self, limit: int) -> list[str]:
        """Up to limit of the oldest lines not taken yet (they stay in the file until remove)."""
        if not self._unread or limit < 1:
            return []
        lines: list[str] = []
        with open(self.path, "rb") as file:
            file.seek(self._read_offset)
            while len(lines) < min(limit, self._unread):
                line = file.readline()
                if not line.endswith(b"\n"):
                    raise OSError(f"{self.path} ends in a torn line at byte {self._read_offset}")
                self._read_offset += len(line)
                lines.append(line[:-1].decode())
        self._unread -= len(lines)
        return lines

    def rest(self) -> list[str]:
        """Every line not taken yet, without taking them."""
        if not self._unread:
            return []
        with open(self.path, "rb") as file:
            file.seek(self._read_offset)
            return [line.decode() for line in file.read().splitlines()]

    def remove_if_drained(self) -> bool:
        """Delete the file when every line has been taken; True when it is gone."""
        if self._unread:
            return False
        self.path.unlink(missing_ok=True)
        self._read_offset = 0
        return True

    def replace_with(self, lines: list[str]) -> None:
        """Make the file hold exactly lines, none taken (written aside, fsync'd, then renamed)."""
        partial = self.path.with_suffix(".partial")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb") as file:
            file.write("".join(line + "\n" for line in lines).encode())
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, self.path)
        self._read_offset, self._unread = 0, len(lines)
