"""Jobs' output files as one zip: a job's, a column's (one output of one task in every live
run) or a selection of jobs'. The entries are checked (the caller may read every file, the
selection has files) before a byte is sent; the zip is then written as it is sent, one file
after the other, in constant memory (``zip_chunks``)."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runyard.errors import Forbidden, InvalidInput, NotFound
from runyard.operations.access import AccessManager
from runyard.operations.auth import Principal
from runyard.operations.base import Operations
from runyard.operations.files import FILE_ID, FileManager
from runyard.store import study_table as table_rows

CHUNK_BYTES = 1024 * 1024
UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')


@dataclass(frozen=True, kw_only=True)
class ZipEntry:
    """One file of the zip: its name in the zip and the file store's file."""

    name: str
    file_id: str
    path: Path


@dataclass(frozen=True, kw_only=True)
class _Found:
    folder: str  # run/task/key
    file_id: str
    filename: str


def files_in(value: Any) -> Iterator[tuple[str, str]]:
    """(file id, file name) of every file-store file an output value points at: a file
    value, an Image's .omni and .raw, and those inside lists."""
    if isinstance(value, list):
        for item in value:
            yield from files_in(item)
    elif isinstance(value, dict) and value.get("source") == "filestore":
        for id_key, name_key in (("file_id", "filename"), ("raw_file_id", "raw_filename")):
            file_id = value.get(id_key)
            if isinstance(file_id, str) and FILE_ID.fullmatch(file_id):
                yield file_id, str(value.get(name_key) or file_id)


def safe(part: str) -> str:
    """A name as one folder or file name in a zip (no separators, control characters or
    characters Windows refuses; never empty, '.' or '..')."""
    cleaned = UNSAFE.sub("_", part).strip()
    return cleaned if cleaned not in ("", ".", "..") else "_"


def unique(name: str, taken: set[str]) -> str:
    """``name``, or ``stem (2).ext``, ``stem (3).ext``, ... if a name before took it."""
    folder, _, filename = name.rpartition("/")
    stem, dot, ext = filename.rpartition(".") if "." in filename[1:] else (filename, "", "")
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{folder}/{stem} ({n}){dot}{ext}"
    taken.add(candidate)
    return candidate


class OutputZipManager(Operations):
    def __init__(
        self, *args: Any, files: FileManager, access: AccessManager, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.files = files
        self.access = access

    def of_jobs(
        self, caller: Principal, serials: Sequence[int], *, workflow: str | None = None
    ) -> list[ZipEntry]:
        """The output files of the jobs ``serials`` (all of workflow ``workflow`` if named:
        a job of another one is refused, 403)."""
        if not serials:
            raise InvalidInput("the selection is empty: select the jobs whose files to download")
        with self.store.read() as conn:
            wanted = self._workflow(conn, workflow).id if workflow is not None else None
            rows = table_rows.outputs_of_jobs(conn, serials)
        others = sorted(set(serials) - {r[0] for r in rows if wanted in (None, r[1])})
        if others:
            raise Forbidden(
                f"job{'s' if len(others) > 1 else ''} {', '.join(map(str, others[:10]))} "
                f"{'are' if len(others) > 1 else 'is'} not of workflow {workflow!r}: "
                "select jobs of that workflow only",
                serials=others[:100],
            )
        found = [
            _Found(folder=f"{safe(run)}/{safe(task)}/{safe(key)}", file_id=i, filename=n)
            for _, _, run, task, outputs in rows
            for key, value in outputs.items()
            for i, n in files_in(value)
        ]
        what = f"job {serials[0]}" if len(serials) == 1 else f"the {len(rows)} selected jobs"
        return self._entries(caller, found, what)

    def of_column(self, caller: Principal, workflow: str, task: str, key: str) -> list[ZipEntry]:
        """The files of output ``key`` of ``task`` in every live run whose job is Done."""
        with self.store.read() as conn:
            found_workflow = self._workflow(conn, workflow)
            task_row = self._task(self._tasks(conn, found_workflow.id), task, found_workflow)
            if task_row.task_type.interface.output(key) is None:
                outputs = ", ".join(p.key for p in task_row.task_type.interface.outputs)
                raise NotFound(
                    f"task {task!r} has no output {key!r}; its outputs: {outputs or '(none)'}",
                    task=task,
                    key=key,
                )
            rows = table_rows.done_outputs(conn, found_workflow.id, task_row.id)
        found = [
            _Found(folder=f"{safe(run)}/{safe(task)}/{safe(key)}", file_id=i, filename=n)
            for _, run, _, outputs in rows
            for i, n in files_in(outputs.get(key))
        ]
        return self._entries(caller, found, f"output {key!r} of task {task!r}")

    def _entries(self, caller: Principal, found: list[_Found], what: str) -> list[ZipEntry]:
        if not found:
            raise InvalidInput(f"{what} has no output files to download", files=0)
        self._check_readable(caller, [f.file_id for f in found])
        taken: set[str] = set()
        entries = []
        for f in found:
            path = self.files.path_of(f.file_id)
            if not path.is_file():
                raise NotFound(
                    f"file {f.file_id} ({f.filename}) is no longer in the file store",
                    file_id=f.file_id,
                )
            name = unique(f"{f.folder}/{safe(f.filename)}", taken)
            entries.append(ZipEntry(name=name, file_id=f.file_id, path=path))
        return entries

    def _check_readable(self, caller: Principal, file_ids: list[str]) -> None:
        """Refuse (403) files the caller may not read (as AccessManager.file: a job's file
        with view on its workflow, an uploaded one by its uploader), in one statement."""
        visible = self.access.visible(caller)
        with self.store.read() as conn:
            owners = table_rows.file_owners(conn, file_ids)
        refused = sorted(
            {
                i
                for i in file_ids
                if visible is not None and not _readable(owners.get(i), visible, caller)
            }
        )
        if refused:
            raise Forbidden(
                f"you may not read {len(refused)} of the files selected (such as "
                f"{refused[0]}): they belong to workflows not shared with you, or were "
                "uploaded by another user",
                file_ids=refused[:100],
            )


def _readable(owner: tuple[Any, Any] | None, visible: dict[int, str], caller: Principal) -> bool:
    if owner is None:
        return False
    workflow_id, uploaded_by = owner
    if workflow_id is not None:
        return workflow_id in visible
    return caller.kind == "job" or (caller.kind == "user" and caller.name == uploaded_by)


class _Sink:
    """What zipfile writes into: the bytes written since the last ``take``."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes, /) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def zip_chunks(entries: Sequence[ZipEntry]) -> Iterator[bytes]:
    """The zip of ``entries``, in chunks as it is written (deflated, ZIP64 when needed)."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for entry in entries:
            big = entry.path.stat().st_size >= zipfile.ZIP64_LIMIT
            with entry.path.open("rb") as source, zf.open(entry.name, "w", force_zip64=big) as out:
                while chunk := source.read(CHUNK_BYTES):
                    out.write(chunk)
                    yield sink.take()
            yield sink.take()
    yield sink.take()
