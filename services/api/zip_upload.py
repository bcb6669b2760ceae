"""A zip of images for POST /batches: checked before anything is unpacked, and again while it is.

Before unpacking: the end record's entry count and directory size (so a zip listing millions of
entries is refused before zipfile builds a list of them), the number of images (PADDY_MAX_BATCH_FILES,
413 "too many files"), every entry's name (no absolute
path, drive, backslash, `..` or control character; no link, no encryption: 422 naming the entry)
and the sizes it declares: each image at most PADDY_MAX_UPLOAD_BYTES and PADDY_MAX_COMPRESSION_RATIO
times its compressed size, all of them at most PADDY_MAX_BATCH_UNPACKED_BYTES (a zip bomb: 413).
While unpacking, an entry is read up to its declared size only (zipfile stops there and checks the
CRC: a size that lies is a damaged entry, 422), and each image's pixels are counted from its header
before it is written (PADDY_MAX_IMAGE_PIXELS, 413).

Only JPEG, PNG and WebP files are unpacked (by their bytes, not their names); other files are left
out and listed, hidden and macOS metadata files (`.name`, `__MACOSX/`) silently. Everything is
written below the batch's own images folder, each file created anew.
"""

import re
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from fastapi import HTTPException, status

from services.api.batches import BatchFiles
from services.api.uploads import check_image
from shared.batches import BATCH_IMAGE_EXTENSIONS, NOT_AN_IMAGE
from shared.paths import CONTROL_CHARACTERS, MAX_PATH_LENGTH, shown

# The end of central directory record (APPNOTE 4.3.16) and its zip64 locator and record.
END_RECORD = struct.Struct("<4s4H2LH")
END_SIGNATURE = b"PK\x05\x06"
ZIP64_LOCATOR = struct.Struct("<4sLQL")
ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")
ZIP64_END_SIGNATURE = b"PK\x06\x06"
MAX_ZIP_COMMENT = 0xFFFF
# Bytes one entry may take in the central directory: its fixed part, a name as long as any
# path Paddy takes, and room for extra fields and a comment. Bounds what zipfile parses.
MAX_DIRECTORY_RECORD = 46 + MAX_PATH_LENGTH + 1024
# Entries a zip may list per image it may hold: the image, its macOS twin (`__MACOSX/._name`,
# which Finder adds to every file), and room for folders and other files.
ENTRIES_PER_IMAGE = 4
DRIVE = re.compile(r"^[A-Za-z]:")
SYMLINK_MODE, FILE_TYPE_BITS = 0o120000, 0o170000


@dataclass(frozen=True)
class ZipLimits:
    max_images: int
    max_unpacked_bytes: int
    max_image_bytes: int
    max_compression_ratio: float
    max_image_pixels: int


def _refuse(code: int, message: str) -> HTTPException:
    return HTTPException(code, f"{message}; nothing was unpacked")


def unpack_images(archive: BinaryIO, images_dir: Path, limits: ZipLimits) -> BatchFiles:
    """Unpack the zip's images into images_dir (created here); HTTPException saying what is wrong
    otherwise (the caller removes whatever was written)."""
    max_entries = limits.max_images * ENTRIES_PER_IMAGE
    _check_end_record(archive, max_entries)
    try:
        zip_file = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise _refuse(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, f"not a readable zip archive ({error})") from None
    with zip_file:
        entries = zip_file.infolist()
        if len(entries) > max_entries:  # the end record's count lied
            raise _too_many_entries(len(entries), max_entries)
        unpacked = BatchFiles()
        images = _images_among(entries, unpacked)
        if len(images) > limits.max_images:
            raise _refuse(
                status.HTTP_413_CONTENT_TOO_LARGE,
                f"too many files: the zip holds {len(images)} images; at most {limits.max_images} "
                "(PADDY_MAX_BATCH_FILES)",
            )
        _check_sizes(images, limits)
        images_dir.mkdir(parents=True)
        for path, info in sorted(images.items()):
            data = _read(zip_file, info)
            try:
                check_image(data, limits.max_image_pixels)
            except HTTPException as refusal:
                if refusal.status_code != status.HTTP_415_UNSUPPORTED_MEDIA_TYPE:
                    raise _refuse(refusal.status_code, f"zip entry {shown(info.filename)}: {refusal.detail}") from None
                unpacked.skip(path, NOT_AN_IMAGE)
                continue
            target = images_dir.joinpath(*PurePosixPath(path).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            unpacked.files.append(path)
    if not unpacked.files:
        raise _refuse(status.HTTP_422_UNPROCESSABLE_CONTENT, "the zip holds no JPEG, PNG or WebP image")
    return unpacked


def _too_many_entries(entries: int, most: int) -> HTTPException:
    return _refuse(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"too many files: the zip lists {entries} entries (files, folders, macOS metadata); at most {most}, "
        f"{ENTRIES_PER_IMAGE} per image it may hold (PADDY_MAX_BATCH_FILES)",
    )


def _check_end_record(archive: BinaryIO, max_entries: int) -> None:
    """The entry count and directory size the zip declares, checked before zipfile reads its
    directory (zipfile reads as many bytes as the record says and makes an object per entry)."""
    archive.seek(0, 2)
    size = archive.tell()
    start = max(0, size - END_RECORD.size - MAX_ZIP_COMMENT)
    archive.seek(start)
    tail = archive.read()
    at = tail.rfind(END_SIGNATURE)
    if at < 0 or len(tail) - at < END_RECORD.size:
        raise _refuse(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "not a zip archive (it has no end record)")
    *_, entries, directory_bytes, _offset, _comment = END_RECORD.unpack_from(tail, at)
    if entries == 0xFFFF or directory_bytes == 0xFFFFFFFF:  # zip64: the real numbers are elsewhere
        entries, directory_bytes = _zip64_counts(archive, start + at)
    archive.seek(0)
    if entries > max_entries:
        raise _too_many_entries(entries, max_entries)
    if directory_bytes > max_entries * MAX_DIRECTORY_RECORD:
        raise _refuse(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"too many files: the zip's directory is {directory_bytes} bytes, more than {max_entries} "
            f"entries need, {ENTRIES_PER_IMAGE} per image it may hold (PADDY_MAX_BATCH_FILES)",
        )


def _zip64_counts(archive: BinaryIO, end_record_at: int) -> tuple[int, int]:
    bad = _refuse(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "not a readable zip archive (a broken zip64 record)")
    if end_record_at < ZIP64_LOCATOR.size:
        raise bad
    archive.seek(end_record_at - ZIP64_LOCATOR.size)
    signature, _disk, record_at, _disks = ZIP64_LOCATOR.unpack(archive.read(ZIP64_LOCATOR.size))
    archive.seek(record_at)
    record = archive.read(ZIP64_END_RECORD.size)
    if signature != ZIP64_LOCATOR_SIGNATURE or len(record) < ZIP64_END_RECORD.size:
        raise bad
    fields = ZIP64_END_RECORD.unpack(record)
    if fields[0] != ZIP64_END_SIGNATURE:
        raise bad
    return fields[7], fields[8]


def _name_problem(info: zipfile.ZipInfo) -> str | None:
    """Why an entry may not be unpacked below the batch's folder, or None."""
    name = info.filename
    if CONTROL_CHARACTERS.search(name) or len(name) > MAX_PATH_LENGTH:
        return f"must be at most {MAX_PATH_LENGTH} characters without control characters"
    if name.startswith("/"):
        return "is an absolute path"
    if DRIVE.match(name):
        return "names a drive"
    if "\\" in name:
        return "holds a backslash (a zip separates folders with '/')"
    if ".." in name.split("/"):
        return "leads out of the zip's folder ('..')"
    if (info.external_attr >> 16) & FILE_TYPE_BITS == SYMLINK_MODE:
        return "is a symbolic link"
    if info.flag_bits & 0x1:
        return "is encrypted"
    return None


def _images_among(entries: list[zipfile.ZipInfo], unpacked: BatchFiles) -> dict[str, zipfile.ZipInfo]:
    """Every entry's name checked (422 naming the first bad one); the image entries by their
    path, other files left out."""
    images: dict[str, zipfile.ZipInfo] = {}
    seen: set[str] = set()
    for info in entries:
        if problem := _name_problem(info):
            raise _refuse(status.HTTP_422_UNPROCESSABLE_CONTENT, f"zip entry {shown(info.filename)} {problem}")
        path = PurePosixPath(info.filename)
        if info.is_dir() or not path.parts:
            continue
        posix = path.as_posix()
        if posix in seen:
            raise _refuse(status.HTTP_422_UNPROCESSABLE_CONTENT, f"zip entry {shown(info.filename)} appears twice")
        seen.add(posix)
        if path.parts[0] == "__MACOSX" or any(part.startswith(".") for part in path.parts):
            continue
        if path.suffix.lower() in BATCH_IMAGE_EXTENSIONS:
            images[posix] = info
        else:
            unpacked.skip(posix, NOT_AN_IMAGE)
    # A file and a folder of one name cannot both be written.
    for posix in images:
        for parent in PurePosixPath(posix).parents:
            if parent.as_posix() in seen:
                raise _refuse(
                    status.HTTP_422_UNPROCESSABLE_CONTENT,
                    f"zip entry {shown(parent.as_posix())} is a file and a folder",
                )
    return images


def _check_sizes(images: dict[str, zipfile.ZipInfo], limits: ZipLimits) -> None:
    """The sizes the zip declares for its images (a zip bomb is refused here, before unpacking)."""
    too_large = status.HTTP_413_CONTENT_TOO_LARGE
    for info in images.values():
        name = shown(info.filename)
        if info.file_size > limits.max_image_bytes:
            raise _refuse(
                too_large,
                f"zip entry {name} unpacks to {info.file_size} bytes; an image may have at most "
                f"{limits.max_image_bytes} (PADDY_MAX_UPLOAD_BYTES)",
            )
        if info.file_size > limits.max_compression_ratio * max(info.compress_size, 1):
            raise _refuse(
                too_large,
                f"zip entry {name} unpacks to {info.file_size} bytes from {info.compress_size}: more than "
                f"{limits.max_compression_ratio:g} times (PADDY_MAX_COMPRESSION_RATIO), a zip bomb",
            )
    total = sum(info.file_size for info in images.values())
    if total > limits.max_unpacked_bytes:
        raise _refuse(
            too_large,
            f"the zip's images unpack to {total} bytes; at most {limits.max_unpacked_bytes} "
            "(PADDY_MAX_BATCH_UNPACKED_BYTES)",
        )


def _read(zip_file: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """The entry's bytes, never more than it declares (zipfile stops at the declared size and
    checks the CRC; the count here does not rely on that)."""
    try:
        with zip_file.open(info) as source:
            data = source.read(info.file_size + 1)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError, RuntimeError) as error:
        raise _refuse(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"zip entry {shown(info.filename)} cannot be unpacked ({error})"
        ) from None
    if len(data) != info.file_size:
        raise _refuse(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"zip entry {shown(info.filename)} unpacks to {len(data)} bytes, not the {info.file_size} it declares",
        )
    return data
