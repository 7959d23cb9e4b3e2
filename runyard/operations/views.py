"""Views of a workflow for the web UI: the runs table one page at a time (stale cells,
queued jobs no worker can run), whether it changed (what live updates are driven by), and a
job's history."""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import Connection

from runyard.errors import InvalidInput, NotFound
from runyard.models import Job, Run
from runyard.operations.base import Operations
from runyard.operations.environments import EnvironmentManager
from runyard.operations.reduce import held_reduces
from runyard.operations.results import in_cell
from runyard.operations.stale import stale_in
from runyard.states import JobState, is_claimed
from runyard.store import counts
from runyard.store import jobs as job_rows
from runyard.store import views as view_rows
from runyard.store import workers as worker_rows
from runyard.store import workflows as workflow_rows
from runyard.store.task_types import parameter_to_json

MAX_PAGE = 1000
FINGERPRINT_SECONDS = 0.4
# How long the number of runs in a workflow's table is trusted for planning a page filtered
# by state (it only picks the plan; a page's answer never depends on it).
SIZE_SECONDS = 30.0
# Up to this many runs, those that pass a name filter are read whole (counted as they are read).
FEW_RUNS = 2000
# A page deep in a table without a name filter starts from the nearest of every
# LANDMARK_EVERY-th run's key (store.views.landmarks), kept for LANDMARK_VIEWS views while
# the runs (and with a state filter the jobs) do not change, and made again at most every
# LANDMARK_SECONDS while they do.
LANDMARK_EVERY = 1000
LANDMARK_VIEWS = 64
LANDMARK_SECONDS = 10.0
# A cell carries the start of a long error message only; the job has all of it.
CELL_ERROR_CHARS = 300


class ViewManager(Operations):
    def __init__(self, *args: Any, environments: EnvironmentManager, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.environments = environments
        self._lock = threading.Lock()
        # workflow name -> (notifier version, monotonic time, fingerprint)
        self._fingerprints: dict[str, tuple[int, float, dict[str, Any]]] = {}
        # (workflow id, obsolete) -> (monotonic time, runs a page without filters counts)
        self._sizes: dict[tuple[int, str], tuple[float, int]] = {}
        # (workflow id, order, descending, obsolete, state) -> (its counts of runs changed
        # and job changes when read, monotonic time, landmarks): see _landmarks.
        self._marks: dict[
            tuple[int, str, bool, str, str | None], tuple[tuple[int, int], float, list[Any]]
        ] = {}

    def runs_page(
        self,
        name: str,
        *,
        offset: int = 0,
        limit: int = 100,
        state: str | None = None,
        run_name: str | None = None,
        order: str = "sort_order",
        descending: bool = False,
        obsolete: str = "exclude",
    ) -> dict[str, Any]:
        """One page of the runs x tasks table: ``limit`` runs from ``offset`` on, of those
        that pass the filters (a job in ``state``; ``run_name`` in the name, any case; the
        live runs, the obsolete ones or both by ``obsolete``: exclude, only, include), with
        their live job per task, and how many runs pass the filters in all. Reduce tasks are
        not columns: their one job per workflow is in ``reduce``."""
        which = checked_filter(state, run_name, obsolete)
        check_page(order, offset, limit)
        with self.store.read() as conn:
            workflow = self._workflow(conn, name)
            tasks = self._tasks(conn, workflow.id)
            total, page = self._page(conn, workflow.id, which, offset, limit, order, descending)
            jobs = view_rows.live_jobs_of_runs(conn, [r.id for r in page])
            reduces = any(t.task_type.interface.kind == "reduce" for t in tasks)
            study = view_rows.study_jobs(conn, workflow.id) if reduces else []
            held = held_reduces(conn, self._graph(conn, workflow.id)) if reduces else {}
            stale = stale_in(conn, tasks, jobs)
            missing = self.environments.missing(
                conn, {t.id: t.task_type.id for t in tasks}, worker_rows.list_workers(conn)
            )
        task_names = {t.id: t.name for t in tasks}
        cells: dict[int, dict[str, Any]] = {r.id: {} for r in page}
        for job in jobs:
            cell = _cell(job, stale.get(job.serial))
            if job.state == JobState.QUEUED and job.task_id in missing:
                cell["worker_missing"] = missing[job.task_id]
            cells[job.run_id][task_names[job.task_id]] = cell
        return {
            "workflow": workflow.name,
            "state": workflow.state,
            "tasks": [t.name for t in tasks if t.task_type.interface.kind != "reduce"],
            # The live job of each reduce task (one per workflow, not per run).
            "reduce": {task_names[j.task_id]: _cell(j, None) for j in study},
            # Why a reduce task has no job queued now: {task: "waiting for 3 runs (...)"}.
            "reduce_held": held,
            # {task: the dependency packages no registered worker provides, has installed or
            # may install} for the tasks that no worker can run (their Queued jobs wait).
            "worker_missing": {task_names[i]: deps for i, deps in missing.items()},
            "total": total,
            "offset": offset,
            "limit": limit,
            "obsolete": which.obsolete,
            "runs": [{**r.to_json(), "jobs": cells[r.id]} for r in page],
        }

    def _page(
        self,
        conn: Connection,
        workflow_id: int,
        which: view_rows.RunFilter,
        offset: int,
        limit: int,
        order: str,
        descending: bool,
    ) -> tuple[int, list[Run]]:
        """How many runs pass the filters, and the page of them."""
        if which.name:
            # A name filter mostly matches a few runs: one scan finds them all, and counts them.
            found = view_rows.page_run_ids(
                conn,
                workflow_id,
                which,
                offset=0,
                limit=FEW_RUNS,
                order=order,
                descending=descending,
            )
            if len(found) < FEW_RUNS:
                return len(found), view_rows.runs_by_id(conn, found[offset : offset + limit])
        total = view_rows.count_runs(conn, workflow_id, which)
        if not which.state and not which.name:
            self._sizes[(workflow_id, which.obsolete)] = (time.monotonic(), total)
        if offset >= total or limit == 0:
            return total, []
        after = None
        if not which.name and offset >= LANDMARK_EVERY:
            marks = self._landmarks(conn, workflow_id, which, order, descending)
            if marks and (k := min(offset // LANDMARK_EVERY, len(marks))):
                after, offset = marks[k - 1], offset - k * LANDMARK_EVERY
        from_jobs = (
            bool(which.state)
            and after is None
            and view_rows.start_from_jobs(
                offset=offset,
                limit=limit,
                total=total,
                runs_in_view=lambda: self._runs_in_view(conn, workflow_id, which.obsolete),
            )
        )
        ids = view_rows.page_run_ids(
            conn,
            workflow_id,
            which,
            offset=offset,
            limit=limit,
            order=order,
            descending=descending,
            from_jobs=from_jobs,
            after=after,
        )
        return total, view_rows.runs_by_id(conn, ids)

    def _landmarks(
        self,
        conn: Connection,
        workflow_id: int,
        which: view_rows.RunFilter,
        order: str,
        descending: bool,
    ) -> list[tuple[Any, ...]] | None:
        """The landmarks of a page without a name filter (``view_rows.landmarks``), kept
        while the workflow's runs do not change (its count of runs changed is the same) and,
        with a state filter, nor do its jobs (the count of job changes); None while they
        change faster than ``LANDMARK_SECONDS`` (the page then walks from the start)."""
        key = (workflow_id, order, descending, which.obsolete, which.state)
        version = self._marks_version(conn, workflow_id, which)
        now = time.monotonic()
        known = self._marks.get(key)
        if known is not None and known[0] == version:
            return known[2]
        if known is not None and now - known[1] < LANDMARK_SECONDS:
            return None
        marks = view_rows.landmarks(
            conn, workflow_id, which, every=LANDMARK_EVERY, order=order, descending=descending
        )
        # Read in another statement than the version (PostgreSQL): kept only if no run
        # changed in between.
        kept = self._marks_version(conn, workflow_id, which) == version
        with self._lock:
            self._marks[key] = (version, now, marks) if kept else ((-1, -1), now, [])
            while len(self._marks) > LANDMARK_VIEWS:
                del self._marks[next(iter(self._marks))]
        return marks if kept else None

    def _marks_version(
        self, conn: Connection, workflow_id: int, which: view_rows.RunFilter
    ) -> tuple[int, int]:
        """What changes whenever the landmarks of ``which`` may: the runs, and with a state
        filter the jobs."""
        read = counts.read(conn, workflow_id)
        return read[counts.RUNS_CHANGED], read[counts.JOB_CHANGES] if which.state else 0

    def _runs_in_view(self, conn: Connection, workflow_id: int, obsolete: str) -> int:
        """How many runs a page without filters would count (what picks the plan of a page
        filtered by state): the last count, if it is younger than ``SIZE_SECONDS``."""
        known = self._sizes.get((workflow_id, obsolete))
        if known is not None and time.monotonic() - known[0] < SIZE_SECONDS:
            return known[1]
        found = view_rows.count_runs(conn, workflow_id, view_rows.RunFilter(obsolete=obsolete))
        self._sizes[(workflow_id, obsolete)] = (time.monotonic(), found)
        return found

    def fingerprint(self, name: str) -> dict[str, Any]:
        """What changes whenever a cell of the workflow's runs table changes (and the live
        jobs by state, for the summary). Equal fingerprints: nothing to update. Everyone
        watching the workflow shares one reading for ``FINGERPRINT_SECONDS``, unless this
        process changed something meanwhile."""
        version, now = self.changed.version, time.monotonic()
        with self._lock:
            cached = self._fingerprints.get(name)
        if cached is not None and cached[0] == version and now - cached[1] < FINGERPRINT_SECONDS:
            return cached[2]
        found = self._read_fingerprint(name)
        with self._lock:
            self._fingerprints[name] = (version, now, found)
        return found

    def _read_fingerprint(self, name: str) -> dict[str, Any]:
        with self.store.read() as conn:
            workflow = self._workflow(conn, name)
            tasks = self._tasks(conn, workflow.id)
            found = view_rows.fingerprint(conn, workflow.id)
        return found | {"state": workflow.state, "locked": workflow.locked, "tasks": len(tasks)}

    def fold_counts(self) -> bool:
        """Fold a batch of the triggers' changes into the counts of jobs and runs
        (PostgreSQL; runyard.store.counts); whether the batch was full (more may wait)."""
        with self.store.write() as conn:
            return counts.fold_changes(conn) == counts.FOLD_BATCH

    def job_form(self, serial: int) -> dict[str, Any]:
        """What a user may enter for a job: its workflow and task, the interface's kind, the
        inputs it asks for (``ui`` and ``define_on_first`` inputs still empty, with the task's
        template), and for an interactive job its outputs; ``waiting`` says whether the job
        takes them now."""
        with self.store.read() as conn:
            job = job_rows.get_job(conn, serial)
            if job is None:
                raise NotFound(f"no job with serial {serial}", serial=serial)
            workflow = workflow_rows.get_workflow(conn, id=job.workflow_id)
            assert workflow is not None
            task = next(t for t in self._tasks(conn, job.workflow_id) if t.id == job.task_id)
        interface = task.task_type.interface
        by_key = {p.key: p for p in interface.inputs}
        asked = [
            parameter_to_json(by_key[i.key])
            | {"mode": i.source.mode, "template": i.source.template}
            for i in task.inputs
            if i.source.mode in ("ui", "define_on_first")
            and job.inputs.get(i.key) is None
            and i.key in by_key
        ]
        return {
            "workflow": workflow.name,
            "task": task.name,
            "task_type": {"name": task.task_type.name, "version": task.task_type.version},
            "kind": interface.kind,
            "waiting": job.state == JobState.WAITING,
            "inputs": asked,
            "outputs": [parameter_to_json(p) for p in interface.outputs]
            if interface.kind == "interactive"
            else [],
        }

    def job_history(self, serial: int) -> list[dict[str, Any]]:
        """What happened to a job, oldest first: created, started and finished (from its
        timings) and its entries in the activity log (state changes made by people, submits,
        restarts, its script's messages)."""
        with self.store.read() as conn:
            job = job_rows.get_job(conn, serial)
            if job is None:
                raise NotFound(f"no job with serial {serial}", serial=serial)
            entries = view_rows.job_activity(conn, serial)
        return job_history(job, entries)


def job_history(job: Job, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events of ``job`` from its timings and its activity ``entries``, by time."""
    events: list[dict[str, Any]] = [
        {"at": job.created_at, "what": "created", "actor": "", "message": ""},
    ]
    if job.started_at:
        events.append({"at": job.started_at, "what": "started", "actor": job.worker or "",
                       "message": f"attempt {job.attempt}"})  # fmt: skip
    if job.finished_at and job.state in (JobState.DONE, JobState.FAILED, JobState.ABORTED):
        events.append({"at": job.finished_at, "what": job.state, "actor": job.worker or "",
                       "message": job.error[:CELL_ERROR_CHARS]})  # fmt: skip
    for entry in entries:
        events.append(
            {
                "at": entry["at"],
                "what": entry["action"],
                "actor": entry["actor"],
                "message": entry["message"],
                "level": entry["level"],
            }
        )
    events = [e for e in events if e["at"] is not None]
    events.sort(key=lambda e: e["at"])
    return [e | {"at": e["at"].isoformat()} for e in events]


def checked_filter(state: str | None, name: str | None, obsolete: str) -> view_rows.RunFilter:
    """The filters of a page of runs, refused with the parameter's name when unknown."""
    if state is not None and state not in {s.value for s in JobState}:
        raise InvalidInput(
            f"unknown job state {state!r}; use one of " + ", ".join(s.value for s in JobState),
            state=state,
        )
    if obsolete not in view_rows.OBSOLETE:
        raise InvalidInput(
            f"unknown value {obsolete!r} of obsolete; use one of {', '.join(view_rows.OBSOLETE)}"
            " (exclude: the live runs, only: the obsolete runs, include: both)",
            obsolete=obsolete,
        )
    return view_rows.RunFilter(state=state, name=name, obsolete=obsolete)


def check_page(order: str, offset: int, limit: int) -> None:
    if order not in view_rows.ORDERS:
        raise InvalidInput(
            f"unknown order {order!r}; use one of {', '.join(view_rows.ORDERS)}", order=order
        )
    if not 0 <= limit <= MAX_PAGE or offset < 0:
        raise InvalidInput(
            f"offset must be 0 or more and limit 0 to {MAX_PAGE}", offset=offset, limit=limit
        )


def _cell(job: Job, stale: str | None) -> dict[str, Any]:
    cell: dict[str, Any] = {
        "serial": job.serial,
        "state": job.state,
        "error": job.error[:CELL_ERROR_CHARS],
        "attempt": job.attempt,
    }
    if stale:
        cell["stale"] = stale
    if is_claimed(job):
        cell["claimed"] = True
    if job.state == JobState.DONE:
        cell |= in_cell(job.outputs)  # numbers, an image's key, tables (results.py)
    return cell
