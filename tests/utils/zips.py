"""Zip archives for the batch tests: ordinary ones, and the hostile kinds POST /batches must refuse
(a bomb, sizes that lie, entries that lead out, links, a directory count that lies)."""

import io
import struct
import zipfile
from collections.abc import Mapping

from PIL import Image

# Where the sizes of an entry sit in its local header and in its central directory record.
LOCAL_SIZES_AT, CENTRAL_SIZES_AT = 18, 20
END_ENTRIES_AT = 8  # entries on this disk, then entries in all (two uint16)


def png(color: tuple[int, int, int] = (40, 140, 40), size: tuple[int, int] = (32, 32)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def zip_of(entries: Mapping[str | zipfile.ZipInfo, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip holding each entry as named (no name is cleaned up: `../x.png` stays that)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def symlink_entry(name: str) -> zipfile.ZipInfo:
    """An entry that unzip would create as a symbolic link (its target is the entry's data)."""
    info = zipfile.ZipInfo(name)
    info.external_attr = (0o120777 << 16) | 0
    info.create_system = 3  # Unix
    return info


def zip_bomb(unpacked_bytes: int, name: str = "bomb.png") -> bytes:
    """One entry of zeros behind a PNG signature: a few KB that unpack to unpacked_bytes."""
    return zip_of({name: b"\x89PNG\r\n\x1a\n" + bytes(unpacked_bytes)})


def with_lying_sizes(data: bytes, declared: int) -> bytes:
    """The zip's single entry made to declare `declared` bytes unpacked, in its local header and
    its central directory record alike (its compressed data and CRC unchanged)."""
    patched = bytearray(data)
    local = patched.index(b"PK\x03\x04")
    central = patched.index(b"PK\x01\x02")
    struct.pack_into("<L", patched, local + LOCAL_SIZES_AT + 4, declared)
    struct.pack_into("<L", patched, central + CENTRAL_SIZES_AT + 4, declared)
    return bytes(patched)


def with_lying_count(data: bytes, entries: int) -> bytes:
    """The zip's end record made to declare `entries` entries, whatever its directory holds."""
    patched = bytearray(data)
    end = patched.rindex(b"PK\x05\x06")
    struct.pack_into("<HH", patched, end + END_ENTRIES_AT, entries, entries)
    return bytes(patched)
