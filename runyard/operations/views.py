"""Views of a workflow for the web UI: the runs table one page at a time, and whether it
changed (what live updates are driven by)."""

from __future__ import annotations

import threading
import time
from typing import Any

from runyard.errors import InvalidInput
from runyard.operations.base import Operations
from runyard.states import JobState
from runyard.store import views as view_rows

MAX_PAGE = 1000
FINGERPRINT_SECONDS = 0.4
# A cell carries the start of a long error message only; the job has all of it.
CELL_ERROR_CHARS = 300


class ViewManager(Operations):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        # workflow name -> (notifier version, monotonic time, fingerprint)
        self._fingerprints: dict[str, tuple[int, float, dict[str, Any]]] = {}

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
    ) -> dict[str, Any]:
        """One page of the runs x tasks table: ``limit`` runs from ``offset`` on, of those
        that pass the filters (a job in ``state``; ``run_name`` in the name, any case), with
        their live job per task, and how many runs pass the filters in all. Reduce tasks are
        not columns: their one job per workflow is in ``reduce``."""
        if state is not None and state not in {s.value for s in JobState}:
            raise InvalidInput(
                f"unknown job state {state!r}; use one of " + ", ".join(s.value for s in JobState),
                state=state,
            )
        if order not in view_rows.ORDERS:
            raise InvalidInput(
                f"unknown order {order!r}; use one of {', '.join(view_rows.ORDERS)}", order=order
            )
        if not 0 <= limit <= MAX_PAGE or offset < 0:
            raise InvalidInput(
                f"offset must be 0 or more and limit 0 to {MAX_PAGE}",
                offset=offset,
                limit=limit,
            )
        with self.store.read() as conn:
            workflow = self._workflow(conn, name)
            tasks = self._tasks(conn, workflow.id)
            total = view_rows.count_runs(conn, workflow.id, state=state, name=run_name)
            page = view_rows.page_runs(
                conn,
                workflow.id,
                offset=offset,
                limit=limit,
                state=state,
                name=run_name,
                order=order,
                descending=descending,
            )
            jobs = view_rows.live_jobs_of_runs(conn, [r.id for r in page])
            reduces = any(t.task_type.interface.kind == "reduce" for t in tasks)
            study = view_rows.study_jobs(conn, workflow.id) if reduces else []
        task_names = {t.id: t.name for t in tasks}
        cells: dict[int, dict[str, Any]] = {r.id: {} for r in page}
        for job in jobs:
            cells[job["run_id"]][task_names[job["task_id"]]] = _cell(job)
        return {
            "workflow": workflow.name,
            "state": workflow.state,
            "tasks": [t.name for t in tasks if t.task_type.interface.kind != "reduce"],
            # The live job of each reduce task (one per workflow, not per run).
            "reduce": {task_names[j["task_id"]]: _cell(j) for j in study},
            "total": total,
            "offset": offset,
            "limit": limit,
            "runs": [
                {
                    "id": r.id,
                    "name": r.name,
                    "sort_order": r.sort_order,
                    "priority": r.priority,
                    "entity": r.entity.to_json() if r.entity else None,
                    "jobs": cells[r.id],
                }
                for r in page
            ],
        }

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


def _cell(job: dict[str, Any]) -> dict[str, Any]:
    return {
        "serial": job["serial"],
        "state": job["state"],
        "error": job["error"][:CELL_ERROR_CHARS],
        "attempt": job["attempt"],
    }
