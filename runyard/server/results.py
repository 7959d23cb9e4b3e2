"""HTTP handlers of a study's results: the study table (a task's scalar outputs for every
run, as JSON or CSV) and output files as one zip (a job's, a column's or a selection's)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi.responses import StreamingResponse

from runyard.errors import InvalidInput
from runyard.operations.output_zips import ZipEntry, zip_chunks
from runyard.operations.study_table import csv_chunks
from runyard.server import schemas as s
from runyard.server.api import _attachment
from runyard.server.deps import Caller, Ry, require_job_access


def study_table(
    name: str,
    ry: Ry,
    caller: Caller,
    task: str | None = None,
    format: Literal["json", "csv"] = "json",
) -> Any:
    """The study table of ``task`` (default: the last task of the runs with scalar outputs):
    one row per live run whose job of the task is Done, its scalar outputs as columns; as
    CSV with ``format=csv``."""
    ry.access.workflow(caller, name)
    table = ry.study_table.table(name, task)
    if format == "json":
        return table
    return StreamingResponse(
        csv_chunks(table),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": _attachment(f"{name}-{table['task'] or 'table'}.csv")},
    )


def workflow_outputs_zip(
    name: str, body: s.OutputSelection, ry: Ry, caller: Caller
) -> StreamingResponse:
    """The output files of a column (``task`` and ``key``: that output of every live run
    whose job is Done) or of a selection of jobs (``serials``), as one zip."""
    ry.access.workflow(caller, name)
    column = body.task is not None or body.key is not None
    if body.serials is not None and not column:
        entries = ry.output_zips.of_jobs(caller, body.serials, workflow=name)
    elif body.task is not None and body.key is not None and body.serials is None:
        entries = ry.output_zips.of_column(caller, name, body.task, body.key)
    else:
        raise InvalidInput(
            "name either a column (task and key) or jobs (serials), not both nor part of one"
        )
    return _zip(entries, f"{name}-outputs.zip")


def job_outputs_zip(serial: s.Int32, ry: Ry, caller: Caller) -> StreamingResponse:
    """A job's output files as one zip (run/task/key/file name inside)."""
    require_job_access(caller, serial)
    ry.access.job(caller, serial)
    return _zip(ry.output_zips.of_jobs(caller, [serial]), f"job-{serial}-outputs.zip")


def _zip(entries: list[ZipEntry], filename: str) -> StreamingResponse:
    return StreamingResponse(
        zip_chunks(entries),
        media_type="application/zip",
        headers={"content-disposition": _attachment(filename)},
    )
