"""A job's results as the runs table shows them: what a Done job's cell says of its outputs
(its numbers, which output is an image, which are tables), a thumbnail of an Image output
(its middle z slice, rendered once and kept on disk in the data directory's ``thumbnails``
folder), and a CSV output read as a table whose numbers are numbers."""

from __future__ import annotations

import csv
import hashlib
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from runyard.errors import Conflict, InvalidInput, NotFound
from runyard.images import Image
from runyard.models import Job
from runyard.operations import previews
from runyard.operations.access import AccessManager
from runyard.operations.auth import Principal
from runyard.operations.base import Operations
from runyard.operations.files import FileManager
from runyard.operations.userdata import UserDataManager
from runyard.store import jobs as job_rows

CELL_NUMBERS = 4  # numbers of a job's outputs that its cell carries, at most
TABLE_ROWS = 10_000  # rows of a CSV output that a table shows, at most
SNIFF_BYTES = 16_384


@dataclass(frozen=True, kw_only=True)
class Thumbnail:
    png: bytes
    etag: str  # the same for as long as the image is the same


def in_cell(outputs: dict[str, Any]) -> dict[str, Any]:
    """What the cell of a Done job shows of its ``outputs``: ``numbers`` ({key: number}, the
    first few), ``image`` (the key of its first Image, drawn as a thumbnail) and ``tables``
    (the keys of its CSV outputs); only those it has."""
    numbers = {
        k: v for k, v in outputs.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    images = [k for k, v in outputs.items() if _typed(v, "Image")]
    tables = [k for k, v in outputs.items() if _typed(v, "CSV")]
    shown: dict[str, Any] = {}
    if numbers:
        shown["numbers"] = dict(islice(numbers.items(), CELL_NUMBERS))
    if images:
        shown["image"] = images[0]
    if tables:
        shown["tables"] = tables
    return shown


def _typed(value: Any, kind: str) -> bool:
    return isinstance(value, dict) and value.get("type") == kind


class ResultManager(Operations):
    def __init__(
        self,
        *args: Any,
        files: FileManager,
        userdata: UserDataManager,
        access: AccessManager,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.files = files
        self.userdata = userdata
        self.access = access

    @property
    def thumbnails_dir(self) -> Path:
        return self.settings.data_dir / "thumbnails"

    def thumbnail(self, caller: Principal, serial: int, key: str) -> Thumbnail:
        """The thumbnail of the Image output ``key`` of the Done job ``serial``: read from
        the cache if it was rendered before, else rendered and kept there."""
        value = self._output(caller, serial, key, "Image")
        name, open_image = self._image_source(caller, value)
        cached = self.thumbnails_dir / f"{name}-{previews.THUMBNAIL_SIDE}.png"
        etag = f'"{name}-{previews.THUMBNAIL_SIDE}"'
        try:
            return Thumbnail(png=cached.read_bytes(), etag=etag)
        except FileNotFoundError:
            pass
        png = previews.thumbnail(open_image())
        _write_atomically(cached, png)
        return Thumbnail(png=png, etag=etag)

    def _image_source(
        self, caller: Principal, value: dict[str, Any]
    ) -> tuple[str, Callable[[], Image]]:
        """The cache name of an Image value (a file store image: its ``.omni`` file's id;
        a User Data one: a digest of its path and of its files' sizes and modification
        times) and how to open it, once the caller is known to be allowed to read it."""
        file_id, raw_file_id = value.get("file_id"), value.get("raw_file_id")
        if value.get("source") != "userdata" and isinstance(file_id, str):
            if not isinstance(raw_file_id, str):
                raise InvalidInput(f"the image {file_id} names no .raw file (raw_file_id)")
            self.access.file(caller, file_id)
            self.access.file(caller, raw_file_id)
            self.files.get(file_id)  # a file no longer stored is not found, 404
            return file_id, lambda: previews.filestore_image(self.files, file_id, raw_file_id)
        path = _userdata_path(value)
        self.access.userdata_path(caller, path)
        real = self.userdata.real_file(path)
        files = [real, real.with_suffix(".raw")] if real.suffix == ".omni" else [real]
        seen = [(f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.is_file()]
        digest = hashlib.sha256(f"{path}\0{seen}".encode())
        return digest.hexdigest()[:32], lambda: previews.userdata_image(self.userdata, path)

    def table(self, caller: Principal, serial: int, key: str) -> dict[str, Any]:
        """The CSV output ``key`` of the Done job ``serial`` as ``columns`` (the first row),
        ``rows`` (at most TABLE_ROWS; numbers as numbers), ``numeric`` (per column: are all
        its values numbers) and ``truncated``."""
        value = self._output(caller, serial, key, "CSV")
        file_id = value.get("file_id")
        if value.get("source") != "userdata" and isinstance(file_id, str):
            self.access.file(caller, file_id)
            _, path = self.files.get(file_id)
        else:
            user_path = _userdata_path(value)
            self.access.userdata_path(caller, user_path)
            path = self.userdata.real_file(user_path)
        return read_table(path, f"output {key!r} of job {serial}")

    def _output(self, caller: Principal, serial: int, key: str, kind: str) -> dict[str, Any]:
        self.access.job(caller, serial)
        with self.store.read() as conn:
            job = job_rows.get_job(conn, serial)
        if job is None:
            raise NotFound(f"no job with serial {serial}", serial=serial)
        return _typed_output(job, key, kind)


def _typed_output(job: Job, key: str, kind: str) -> dict[str, Any]:
    if job.state != "Done":
        raise Conflict(
            f"job {job.serial} is {job.state}: only a Done job's outputs can be shown",
            serial=job.serial,
        )
    value = job.outputs.get(key)
    of_kind = [k for k, v in job.outputs.items() if _typed(v, kind)]
    if not isinstance(value, dict) or value.get("type") != kind:
        raise NotFound(
            f"job {job.serial} has no {kind} output {key!r}; its {kind} outputs: "
            f"{', '.join(of_kind) or '(none)'}",
            serial=job.serial,
            key=key,
        )
    return value


def _userdata_path(value: dict[str, Any]) -> str:
    path = value.get("virtualpath")
    if not isinstance(path, str) or not path:
        raise InvalidInput("the value names no file: no file_id (file store) or virtualpath")
    filename = value.get("filename")
    return path + filename if path.endswith("/") and isinstance(filename, str) else path


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all (two requests may render the same thumbnail)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_table(path: Path, what: str) -> dict[str, Any]:
    """A CSV file as columns and rows (its delimiter guessed: comma, semicolon or tab)."""
    with path.open(newline="", encoding="utf-8", errors="replace") as source:
        sample = source.read(SNIFF_BYTES)
        source.seek(0)
        try:
            dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        try:
            reader = csv.reader(source, dialect)
            columns = next(reader, [])
            rows = [[_number(cell) for cell in row] for row in islice(reader, TABLE_ROWS)]
            truncated = next(reader, None) is not None
        except csv.Error as exc:
            raise InvalidInput(f"{what} is not a CSV table: {exc}") from None
    width = max([len(columns), *(len(r) for r in rows)])
    numeric = [
        any(i < len(r) and r[i] != "" for r in rows)
        and all(i >= len(r) or r[i] == "" or not isinstance(r[i], str) for r in rows)
        for i in range(width)
    ]
    return {"columns": columns, "rows": rows, "numeric": numeric, "truncated": truncated}


def _number(cell: str) -> str | int | float:
    """A cell that is a finite number, as a number; anything else as it is."""
    text = cell.strip()
    if "_" in text:  # Python reads 1_000 as a number; a table does not
        return cell
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return cell
    return number if math.isfinite(number) else cell
