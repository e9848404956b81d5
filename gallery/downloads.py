"""A ZIP of photos streamed as it is written, never held whole in memory or on disk."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath

from django.db.models.fields.files import FieldFile

CHUNK_SIZE = 256 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ZipEntry:
    """One file of the archive: its name inside the ZIP and the stored file to copy."""

    name: str
    file: FieldFile
    modified: datetime
    size: int = 0


class _Sink(io.RawIOBase):
    """A write-only, unseekable stream whose written bytes the generator hands out.

    Being unseekable makes zipfile write sizes in data descriptors after each
    file instead of seeking back to patch the local headers.
    """

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def safe_name(index: int, filename: str, extension: str = ".jpg") -> str:
    """`NNN-name.ext`: numbered so names never collide, without any path or odd characters.

    `extension` (of the stored file) is added when the client's name has none.
    """
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).strip("._") or "photo"
    if not PurePosixPath(base).suffix:
        base += extension
    return f"{index:03d}-{base}"


def zip_stream(entries: Iterable[ZipEntry]) -> Iterator[bytes]:
    """Yield a ZIP archive of `entries` chunk by chunk.

    Files are read through the storage API (local disk or S3 alike) and
    STORED, not deflated: JPEGs do not compress, and storing keeps the CPU idle.
    """
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for entry in entries:
            info = zipfile.ZipInfo(entry.name, date_time=_zip_time(entry.modified))
            info.compress_type = zipfile.ZIP_STORED
            # The expected size lets zipfile choose ZIP64 headers when a file needs them.
            info.file_size = entry.size
            with entry.file.open("rb") as source, archive.open(info, mode="w") as target:
                while chunk := source.read(CHUNK_SIZE):
                    target.write(chunk)
                    if data := sink.take():
                        yield data
            if data := sink.take():
                yield data
    # Closing the archive wrote the central directory.
    if data := sink.take():
        yield data


def _zip_time(moment: datetime) -> tuple[int, int, int, int, int, int]:
    # ZIP timestamps cannot express years before 1980.
    year = max(moment.year, 1980)
    return (year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
