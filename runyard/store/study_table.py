"""Statements behind the study table and the output downloads: the outputs of the Done job
of one task in every live run, in one statement (no statement per run)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Text, cast, select

from runyard.states import JobState
from runyard.store.schema import files, jobs, runs, tasks


def done_outputs(conn: Connection, workflow_id: int, task_id: int) -> list[Any]:
    """(run id, run name, job serial, job outputs) of the Done job of ``task_id`` in every
    live run of the workflow (not obsolete, not its study run), in run sort order. Index
    ix_jobs_workflow_state_run finds the jobs; at most one live job per task and run. The
    outputs are read as text and decoded in one call (a call per row was half the time at
    100,000 runs)."""
    statement = (
        select(runs.c.id, runs.c.name, jobs.c.serial, cast(jobs.c.outputs, Text))
        .join(runs, runs.c.id == jobs.c.run_id)
        .where(
            jobs.c.workflow_id == workflow_id,
            jobs.c.state == JobState.DONE.value,
            jobs.c.task_id == task_id,
            runs.c.obsolete.is_(False),
            runs.c.study.is_(False),
        )
        .order_by(runs.c.sort_order, runs.c.id)
    )
    found = conn.execute(statement).all()
    outputs = json.loads("[" + ",".join(row[3] for row in found) + "]")
    return [(*row[:3], out) for row, out in zip(found, outputs, strict=True)]


def outputs_of_jobs(conn: Connection, serials: Sequence[int]) -> list[Any]:
    """(serial, workflow id, run name, task name, outputs) of the jobs ``serials`` that
    exist, in the order of ``serials``."""
    statement = (
        select(jobs.c.serial, jobs.c.workflow_id, runs.c.name, tasks.c.name, jobs.c.outputs)
        .join(runs, runs.c.id == jobs.c.run_id)
        .join(tasks, tasks.c.id == jobs.c.task_id)
        .where(jobs.c.serial.in_(sorted(set(serials))))
    )
    found = {row[0]: row for row in conn.execute(statement)}
    return [found[s] for s in dict.fromkeys(serials) if s in found]


# Ids a statement names at most (SQLite allows 32,766 bound parameters).
IDS_PER_STATEMENT = 10_000


def file_owners(conn: Connection, file_ids: Sequence[str]) -> dict[str, tuple[Any, Any]]:
    """file id -> (workflow id of the job that stored it or None, the user who uploaded it
    or None), for the ids in the file store."""
    found: dict[str, tuple[Any, Any]] = {}
    ids = sorted(set(file_ids))
    for start in range(0, len(ids), IDS_PER_STATEMENT):
        statement = (
            select(files.c.id, jobs.c.workflow_id, files.c.uploaded_by)
            .outerjoin(jobs, jobs.c.serial == files.c.job_serial)
            .where(files.c.id.in_(ids[start : start + IDS_PER_STATEMENT]))
        )
        found.update({row[0]: (row[1], row[2]) for row in conn.execute(statement)})
    return found
