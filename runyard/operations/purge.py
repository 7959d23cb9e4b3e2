"""Purge (admins): remove what is obsolete for good, with the file store's files no job
needs any more.

What goes: the runs and jobs of ``Obsolete`` workflows (the workflows stay, empty), obsolete
runs with their jobs, and ``Obsolete`` jobs (superseded by a restart, or soft-deleted); then
every file of the file store that no remaining job or task refers to and that

- a purged job referred to (its inputs, outputs or metadata) or uploaded, or
- was uploaded more than a grace period ago and never became part of anything: by no job,
  by a job that no longer exists, or by a ``Done`` job that did not put it in its outputs.

A file that any remaining job (live or not) or task refers to is never removed: after a
purge no record points at a missing file. The rows go in one transaction; the files are
removed after its commit (one missing already is fine). A crash in between leaves files
without records, never records without files: the next purge removes those *stray* files.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from runyard.errors import Conflict, InvalidInput
from runyard.operations.base import Operations
from runyard.operations.files import FileManager
from runyard.states import JobState
from runyard.store import purge as purge_rows
from runyard.store import workflows as workflow_rows

log = logging.getLogger("runyard.purge")

# A file that nothing refers to is kept this long after its upload: the time between
# storing a file and the job or run that refers to it.
UNREFERENCED_GRACE = timedelta(days=1)
MAX_OLDER_THAN_DAYS = 36500
LOCK_TIMEOUT_MS = 500  # below PostgreSQL's deadlock_timeout (1 s): the purge is who waits
LOCK_ATTEMPTS = 10
FILE_NAME = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True, kw_only=True)
class StoredFileRow:
    id: str
    size: int
    job_serial: int | None
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class WorkflowPurge:
    """What a purge removes of one workflow."""

    name: str
    state: str
    runs: int = 0
    jobs: int = 0
    files: int = 0
    bytes: int = 0


@dataclass(frozen=True, kw_only=True)
class PurgeReport:
    """What a purge removed, or (a dry run) would remove."""

    dry_run: bool
    workflow: str | None
    older_than_days: int | None
    runs: int
    jobs: int
    files: int  # stray files included
    bytes: int
    stray_files: int  # files on disk that no record names any more
    workflows: list[WorkflowPurge] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        verb = "would purge" if self.dry_run else "purged"
        names = ", ".join(w.name for w in self.workflows) or "none"
        return (
            f"{verb} {self.runs} runs, {self.jobs} jobs, {self.files} files ({self.bytes} "
            f"bytes); workflows: {names}"
        )


@dataclass(kw_only=True)
class _Plan:
    workflow_ids: list[int]
    run_ids: list[int]
    obsolete_serials: list[int]
    serials: dict[int, int]  # every purged job: serial -> workflow id
    runs_by_workflow: Counter[int]
    files: list[StoredFileRow]
    file_workflows: dict[str, int]
    strays: list[tuple[Path, int]]


def file_ids(value: Any) -> Iterator[str]:
    """The file store ids a JSON value names: every string under a key ending in
    ``file_id`` (``file_id``, ``raw_file_id``), at any depth (lists of a reduce's inputs)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str):
                if isinstance(key, str) and key.endswith("file_id"):
                    yield item
            else:
                yield from file_ids(item)
    elif isinstance(value, list):
        for item in value:
            yield from file_ids(item)


def decide_files(
    stored: Iterable[StoredFileRow],
    *,
    needed: set[str],
    dropped: set[str],
    purged: Mapping[int, int],
    uploaders: Mapping[int, tuple[str, int]],
    quiet_before: datetime,
    workflow_id: int | None,
) -> Iterator[StoredFileRow]:
    """The stored files to remove. ``needed``: the ids that remaining jobs and tasks name
    (never removed); ``dropped``: those that purged jobs name; ``purged``: serial ->
    workflow of the purged jobs; ``uploaders``: serial -> (state, workflow) of the remaining
    jobs that uploaded files; ``quiet_before``: a file that nothing names goes only if it
    was uploaded before then; ``workflow_id``: the purge is about that workflow only."""
    for row in stored:
        if row.id in needed:
            continue
        if row.id in dropped or (row.job_serial is not None and row.job_serial in purged):
            yield row
        elif row.created_at < quiet_before:
            uploader = uploaders.get(row.job_serial) if row.job_serial is not None else None
            if uploader is None:  # no job uploaded it, or that job is gone
                if workflow_id is None:
                    yield row
            elif uploader[0] == JobState.DONE.value and workflow_id in (None, uploader[1]):
                yield row  # the job finished without it


class PurgeManager(Operations):
    def __init__(self, *args: Any, files: FileManager, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.file_store = files

    def purge(
        self,
        *,
        dry_run: bool,
        workflow: str | None = None,
        older_than_days: int | None = None,
        actor: str = "admin",
    ) -> PurgeReport:
        """Remove (or, ``dry_run``, count) the obsolete runs and jobs and the files no job
        needs; only of ``workflow`` if named, only what nothing happened to for
        ``older_than_days`` if given. Written to the activity log either way."""
        if older_than_days is not None and not 0 <= older_than_days <= MAX_OLDER_THAN_DAYS:
            raise InvalidInput(
                f"older_than_days must be a number of days from 0 to {MAX_OLDER_THAN_DAYS}; "
                f"got {older_than_days}",
                older_than_days=older_than_days,
            )
        if dry_run:
            with self.store.read() as conn:
                workflow_id = self._workflow(conn, workflow).id if workflow else None
                plan = self._plan(conn, workflow_id, older_than_days)
                report = self._report(
                    conn, plan, dry_run=True, workflow=workflow, older_than_days=older_than_days
                )
            with self.store.write() as conn:
                self._log_purge(conn, actor, report, workflow_id)
            return report
        report, plan = self._purge_rows(workflow, older_than_days, actor)
        self._remove_files(plan)
        return report

    def _purge_rows(
        self, workflow: str | None, older_than_days: int | None, actor: str
    ) -> tuple[PurgeReport, _Plan]:
        """Delete the rows in one transaction (waiting for runs and jobs to be free)."""
        for attempt in range(1, LOCK_ATTEMPTS + 1):
            try:
                with self.store.write() as conn:
                    purge_rows.lock_for_purge(conn, timeout_ms=LOCK_TIMEOUT_MS)
                    workflow_id = self._workflow(conn, workflow).id if workflow else None
                    plan = self._plan(conn, workflow_id, older_than_days)
                    report = self._report(
                        conn,
                        plan,
                        dry_run=False,
                        workflow=workflow,
                        older_than_days=older_than_days,
                    )
                    deleted = purge_rows.delete_purged(
                        conn,
                        workflow_ids=plan.workflow_ids,
                        run_ids=plan.run_ids,
                        obsolete_serials=plan.obsolete_serials,
                        all_serials=sorted(plan.serials),
                        file_ids=[f.id for f in plan.files],
                    )
                    expected = (report.runs, report.jobs, len(plan.files))
                    if deleted != expected:  # cannot happen while runs and jobs are held
                        raise Conflict(
                            f"the purge found {expected} (runs, jobs, files) to remove but "
                            f"removed {deleted}; nothing was removed, try again"
                        )
                    self._log_purge(conn, actor, report, workflow_id)
                return report, plan
            except purge_rows.Busy:
                time.sleep(0.1 * attempt)
        raise Conflict(
            "the purge could not start: runs and jobs were being changed all the time; "
            "nothing was removed, try again"
        )

    def _plan(self, conn: Connection, workflow_id: int | None, older_than: int | None) -> _Plan:
        now = self.now()
        cutoff = now - timedelta(days=older_than) if older_than is not None else None
        gone = purge_rows.obsolete_workflows(conn, workflow_id=workflow_id, cutoff=cutoff)
        workflow_ids = [wid for wid, _ in gone]
        scope: dict[str, Any] = {
            "workflow_id": workflow_id, "cutoff": cutoff, "skip_workflows": workflow_ids,
        }  # fmt: skip
        runs = purge_rows.obsolete_runs(conn, **scope)
        run_ids = [rid for rid, _ in runs]
        in_runs = set(run_ids)
        obsolete = [
            (serial, wid)
            for serial, rid, wid in purge_rows.obsolete_jobs(conn, **scope)
            if rid not in in_runs
        ]
        serials = dict(purge_rows.jobs_of(conn, run_ids=run_ids, workflow_ids=workflow_ids))
        serials.update(obsolete)
        runs_by_workflow: Counter[int] = Counter(wid for _, wid in runs)
        runs_by_workflow.update(purge_rows.run_workflows(conn, workflow_ids))

        needed: set[str] = set()
        dropped: set[str] = set()
        file_workflows: dict[str, int] = {}
        for serial, values in purge_rows.job_values_with_files(conn):
            if serial in serials:
                for file_id in file_ids(values):
                    dropped.add(file_id)
                    file_workflows.setdefault(file_id, serials[serial])
            else:
                needed.update(file_ids(values))
        for inputs in purge_rows.task_inputs_with_files(conn):
            needed.update(file_ids(inputs))

        stored = [
            StoredFileRow(id=fid, size=size, job_serial=serial, created_at=at)
            for fid, size, serial, at in purge_rows.stored_files(conn)
        ]
        remaining = [
            f.job_serial for f in stored if f.job_serial is not None and f.job_serial not in serials
        ]
        uploaders = purge_rows.job_states(conn, remaining)
        grace = max(UNREFERENCED_GRACE, timedelta(days=older_than or 0))
        removed = list(
            decide_files(
                stored,
                needed=needed,
                dropped=dropped,
                purged=serials,
                uploaders=uploaders,
                quiet_before=now - grace,
                workflow_id=workflow_id,
            )
        )
        for row in removed:
            if row.id not in file_workflows and row.job_serial is not None:
                wid = serials.get(row.job_serial) or uploaders.get(row.job_serial, ("", 0))[1]
                if wid:
                    file_workflows[row.id] = wid
        strays = (
            self._stray_files({f.id for f in stored}, (now - grace).timestamp())
            if workflow_id is None
            else []
        )
        return _Plan(
            workflow_ids=workflow_ids,
            run_ids=run_ids,
            obsolete_serials=[serial for serial, _ in obsolete],
            serials=serials,
            runs_by_workflow=runs_by_workflow,
            files=removed,
            file_workflows=file_workflows,
            strays=strays,
        )

    def _stray_files(self, known: set[str], before: float) -> list[tuple[Path, int]]:
        """Files in the file store's folders that no record names, untouched since
        ``before`` (a file being stored is moved into place just before its record is
        written)."""
        strays = []
        for path in sorted(self.file_store.root.glob("??/*")):
            if not FILE_NAME.match(path.name) or path.name in known:
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if path.is_file() and stat.st_mtime < before:
                strays.append((path, stat.st_size))
        return strays

    def _report(
        self,
        conn: Connection,
        plan: _Plan,
        *,
        dry_run: bool,
        workflow: str | None,
        older_than_days: int | None,
    ) -> PurgeReport:
        jobs_by_workflow = Counter(plan.serials.values())
        files_by_workflow: Counter[int] = Counter()
        bytes_by_workflow: Counter[int] = Counter()
        for row in plan.files:
            wid = plan.file_workflows.get(row.id)
            if wid is not None:
                files_by_workflow[wid] += 1
                bytes_by_workflow[wid] += row.size
        names = {w.id: w for w in workflow_rows.list_workflows(conn)}
        affected = sorted(
            set(plan.runs_by_workflow) | set(jobs_by_workflow) | set(files_by_workflow),
            key=lambda wid: names[wid].name if wid in names else "",
        )
        return PurgeReport(
            dry_run=dry_run,
            workflow=workflow,
            older_than_days=older_than_days,
            runs=sum(plan.runs_by_workflow.values()),
            jobs=len(plan.serials),
            files=len(plan.files) + len(plan.strays),
            bytes=sum(f.size for f in plan.files) + sum(size for _, size in plan.strays),
            stray_files=len(plan.strays),
            workflows=[
                WorkflowPurge(
                    name=names[wid].name,
                    state=names[wid].state,
                    runs=plan.runs_by_workflow[wid],
                    jobs=jobs_by_workflow[wid],
                    files=files_by_workflow[wid],
                    bytes=bytes_by_workflow[wid],
                )
                for wid in affected
                if wid in names
            ],
        )

    def _log_purge(
        self, conn: Connection, actor: str, report: PurgeReport, workflow_id: int | None
    ) -> None:
        scope = []
        if report.workflow:
            scope.append(f"workflow {report.workflow}")
        if report.older_than_days is not None:
            scope.append(f"older than {report.older_than_days} days")
        message = report.summary() + (f" ({', '.join(scope)})" if scope else "")
        action = "purge.dry_run" if report.dry_run else "purge"
        self._log(conn, actor, action, message, workflow_id=workflow_id)

    def _remove_files(self, plan: _Plan) -> None:
        """After the commit: remove the purged files and their thumbnails (one gone already
        is fine). A file that cannot be removed stays as a stray file, for the next purge."""
        paths = [self.file_store.path_of(f.id) for f in plan.files]
        thumbnails = self.settings.data_dir / "thumbnails"  # of images (operations/results.py)
        paths += [t for f in plan.files for t in thumbnails.glob(f"{f.id}-*.png")]
        for path in [*paths, *(p for p, _ in plan.strays)]:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("purge: cannot remove %s (%s); the next purge tries again", path, exc)
