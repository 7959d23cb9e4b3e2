"""The file store: job files kept by the server on local disk, in the data directory.

An upload is written to a staging file while its checksum is computed, and becomes visible
(renamed into place, recorded in the database) only once it is whole and its size and SHA-256
match what the sender announced: a partial or corrupt upload never appears.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runyard.errors import InvalidInput, NotFound
from runyard.models import StoredFile
from runyard.operations.base import Operations
from runyard.store import files as file_rows

SHA256 = re.compile(r"^[0-9a-f]{64}$")
FILE_ID = re.compile(r"^[0-9a-f]{32}$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
ABANDONED_SECONDS = 24 * 3600  # a staging file untouched this long is an abandoned upload


@dataclass(kw_only=True)
class Upload:
    """A file being received: write chunks, then ``FileManager.commit`` or ``discard``."""

    path: Path
    filename: str
    handle: Any
    size: int = 0
    digest: Any = field(default_factory=hashlib.sha256)

    def write(self, chunk: bytes) -> None:
        self.handle.write(chunk)
        self.digest.update(chunk)
        self.size += len(chunk)

    def discard(self) -> None:
        try:
            self.handle.close()
        except OSError:
            pass  # flushing what is buffered fails on a full disk: the file goes anyway
        finally:
            self.path.unlink(missing_ok=True)

    def verify(self, size: int | None, sha256: str | None, *, what: str, undone: str) -> str:
        """Flush the received file to disk and check it against the announced ``size`` and
        ``sha256`` (errors name ``what`` and say ``undone``); its SHA-256."""
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        actual: str = self.digest.hexdigest()
        if size is not None and size != self.size:
            raise InvalidInput(
                f"{what} has the wrong size: received {self.size} bytes, {size} were "
                f"announced; {undone}, send it again",
                size=self.size,
                expected_size=size,
            )
        if sha256 is not None and sha256.lower() != actual:
            raise InvalidInput(
                f"{what} is corrupt: its SHA-256 is {actual}, not {sha256}; {undone}, send it "
                "again",
                sha256=actual,
                expected_sha256=sha256.lower(),
            )
        return actual

    def move_to(self, target: Path) -> None:
        """Make the verified file visible as ``target``, durably (the rename survives a
        power cut)."""
        os.replace(self.path, target)
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class FileManager(Operations):
    @property
    def root(self) -> Path:
        return self.settings.data_dir / "files"

    def begin_upload(
        self, filename: str, *, size: int | None = None, sha256: str | None = None
    ) -> Upload:
        """Start receiving a file; the announced ``size`` and ``sha256`` are checked for
        their form here (before any byte is read) and against the data in ``commit``."""
        check_filename(filename)
        check_announced(size, sha256)
        staging = self.root / "staging"
        staging.mkdir(parents=True, exist_ok=True)
        self.remove_abandoned_uploads()
        fd, path = tempfile.mkstemp(prefix="upload-", dir=staging)
        return Upload(path=Path(path), filename=filename, handle=os.fdopen(fd, "wb"))

    def remove_abandoned_uploads(self) -> int:
        """Delete staging files that nothing has written to for ``ABANDONED_SECONDS``: what
        uploads cut off by a server crash leave behind (a live upload's file keeps being
        written to). How many were deleted."""
        cutoff = self.now().timestamp() - ABANDONED_SECONDS
        removed = 0
        for path in (self.root / "staging").glob("upload-*"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:  # finished or removed meanwhile
                continue
        return removed

    def commit(
        self,
        upload: Upload,
        *,
        expected_size: int | None = None,
        expected_sha256: str | None = None,
        job_serial: int | None = None,
        uploaded_by: str | None = None,
    ) -> StoredFile:
        """Check the received file and make it visible; on any problem it is discarded."""
        try:
            check_announced(expected_size, expected_sha256)
            sha256 = upload.verify(
                expected_size,
                expected_sha256,
                what=f"upload of {upload.filename!r}",
                undone="nothing was stored",
            )
            stored = StoredFile(
                id=secrets.token_hex(16),
                filename=upload.filename,
                size=upload.size,
                sha256=sha256,
                job_serial=job_serial,
            )
            target = self.path_of(stored.id)
            target.parent.mkdir(parents=True, exist_ok=True)
            upload.move_to(target)
        except BaseException:
            upload.discard()
            raise
        try:
            with self.store.write() as conn:
                file_rows.insert_file(conn, stored, now=self.now(), uploaded_by=uploaded_by)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return stored

    def get(self, file_id: str) -> tuple[StoredFile, Path]:
        if not FILE_ID.fullmatch(file_id):
            raise InvalidInput(f"{file_id!r} is not a file id (32 hexadecimal digits)")
        with self.store.read() as conn:
            stored = file_rows.get_file(conn, file_id)
        path = self.path_of(file_id)
        if stored is None or not path.is_file():
            raise NotFound(f"no file {file_id} in the file store", file_id=file_id)
        return stored, path

    def path_of(self, file_id: str) -> Path:
        return self.root / file_id[:2] / file_id


def check_filename(filename: str) -> None:
    """A file name that a worker can use as it is: no folders, no control characters, at
    most 255 bytes in UTF-8 (the limit of common file systems)."""
    try:
        length = len(filename.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates
        length = -1
    if (
        not filename
        or filename in (".", "..")
        or "/" in filename
        or "\\" in filename
        or CONTROL.search(filename)
        or not 0 < length <= 255
    ):
        raise InvalidInput(
            f"{filename!r} is not a valid file name: give a plain name like 'table.csv' "
            "(no folders, no control characters, at most 255 bytes)",
            filename=filename,
        )


def check_announced(size: int | None, sha256: str | None) -> None:
    """The size and SHA-256 a sender announced must be a size and a SHA-256."""
    if size is not None and size < 0:
        raise InvalidInput(f"size must be a number of bytes (0 or more); got {size}", size=size)
    if sha256 is not None and not SHA256.match(sha256.lower()):
        raise InvalidInput(
            f"sha256 must be the file's SHA-256 as 64 hexadecimal digits; got {sha256!r}",
            sha256=sha256,
        )
