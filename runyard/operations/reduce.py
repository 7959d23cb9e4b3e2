"""Reduce tasks (fan-in): one job per workflow, whose inputs are the lists of the upstream
results of every active run.

A reduce task's job lives in the workflow's *study run* (a run that is never listed). Every
change that can alter what a reduce would read (an upstream job changing state, a run added,
obsoleted or paused) calls ``_refresh_reduces`` in its own transaction, which decides with the
study run's row locked, so that two decisions never interleave:

- while an active run has upstream work pending (Waiting, Queued, Running), a reduce job not
  yet Done is made Obsolete (it would miss that work) and no new one is queued;
- otherwise, if the set of upstream results differs from the one the live reduce job was made
  from (its ``reduce_key``), that job becomes Obsolete and one new job is queued.

The database allows one live job per task and run, so there are never two live reduce jobs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from runyard.models import Task
from runyard.operations.base import Operations
from runyard.states import JobState, resolve_inputs
from runyard.store import jobs as job_rows
from runyard.store import reduce as reduce_rows
from runyard.store import runs as run_rows
from runyard.taskgraph import TaskGraph

# A reduce job in one of these states has not used its inputs yet, or is using them.
UNFINISHED = (JobState.WAITING, JobState.QUEUED, JobState.RUNNING)


class Reducing(Operations):
    """Keeps each reduce task's one job in step with the results of the active runs."""

    def _refresh_reduces(
        self,
        conn: Connection,
        workflow_id: int,
        changed_task_ids: Iterable[int] | None = None,
        *,
        graph: TaskGraph | None = None,
    ) -> None:
        """Re-decide the reduce tasks of a workflow that depend on ``changed_task_ids`` (all
        of them when None). ``graph``: the workflow's, if the caller has read it already in
        this transaction."""
        graph = graph or self._graph(conn, workflow_id)
        for reduce, awaited in graph.reduces_awaiting(changed_task_ids):
            self._refresh_reduce(conn, reduce, graph.tasks, awaited)

    def _refresh_reduce(
        self,
        conn: Connection,
        reduce: Task,
        tasks: list[Task],
        upstream: Iterable[int],
        *,
        force: bool = False,
    ) -> None:
        study = run_rows.study_run(conn, reduce.workflow_id, self.now())  # the lock
        current = reduce_rows.live_job(conn, reduce.id, study)
        if reduce_rows.has_pending(conn, reduce.workflow_id, upstream):
            if current is not None and current.state in UNFINISHED:
                self._obsolete_reduce(conn, current.serial)
            return
        by_name = {t.name: t for t in tasks}
        direct = {by_name[name].id for name in reduce.upstream_names() if name in by_name}
        runs = _complete_runs(reduce_rows.done_jobs(conn, reduce.workflow_id, direct), direct)
        key = _reduce_key(runs)
        if current is not None:
            if current.metadata.get("reduce_key") == key and not force:
                return
            self._obsolete_reduce(conn, current.serial)
        if not runs:
            return
        inputs, state = _reduce_inputs(reduce, by_name, runs)
        job_rows.insert_job(
            conn,
            workflow_id=reduce.workflow_id,
            run_id=study,
            task_id=reduce.id,
            task_type_id=reduce.task_type.id,
            state=state.value,
            inputs=inputs,
            metadata={
                "reduce_key": key,
                "runs": [
                    {"id": run_id, "name": run.name, "entity": run.entity}
                    for run_id, run in runs.items()
                ],
            },
            created_at=self.now(),
        )

    def _obsolete_reduce(self, conn: Connection, serial: int) -> None:
        job_rows.set_state(
            conn,
            serial,
            JobState.OBSOLETE,
            [s for s in JobState if s != JobState.OBSOLETE],
            lease_id=None,
        )


def held_reduces(conn: Connection, graph: TaskGraph) -> dict[str, str]:
    """Why each reduce task of a workflow has no job queued now, by task name: the active
    runs it waits for, by the state of their pending upstream jobs (only the reduce tasks
    that wait)."""
    held = {}
    for reduce, awaited in graph.reduces:
        why = held_reason(reduce_rows.pending_runs(conn, reduce.workflow_id, awaited))
        if why:
            held[reduce.name] = why
    return held


def held_reason(pending: Mapping[str, int]) -> str | None:
    """``waiting for 3 runs (Waiting: 2, Queued: 1)``, from the runs by the state of their
    pending jobs; None when none is pending."""
    total = sum(pending.values())
    if not total:
        return None
    counts = ", ".join(f"{state}: {pending[state]}" for state in UNFINISHED if pending.get(state))
    return f"waiting for {total} run{'s' if total != 1 else ''} ({counts})"


@dataclass
class RunResult:
    """What a reduce reads of one run: its name and entity, and its upstream jobs' outputs
    and serials by task id."""

    name: str
    entity: dict[str, Any] | None
    outputs: dict[int, dict[str, Any]] = field(default_factory=dict)
    serials: list[int] = field(default_factory=list)


def _complete_runs(done: list[reduce_rows.DoneJob], direct: set[int]) -> dict[int, RunResult]:
    """The runs (in sort order) that have a Done job of every task the reduce reads."""
    runs: dict[int, RunResult] = {}
    for job in done:
        run = runs.setdefault(job.run_id, RunResult(job.run_name, job.entity))
        run.outputs[job.task_id] = job.outputs
        run.serials.append(job.serial)
    return {run_id: run for run_id, run in runs.items() if set(run.outputs) == direct}


def _reduce_key(runs: dict[int, RunResult]) -> str:
    """What a reduce job was made from: the runs and the serials of their upstream jobs."""
    made_from = [[run_id, run.serials] for run_id, run in runs.items()]
    return hashlib.sha256(json.dumps(made_from).encode()).hexdigest()


def _reduce_inputs(
    reduce: Task, by_name: dict[str, Task], runs: dict[int, RunResult]
) -> tuple[dict[str, Any], JobState]:
    """The inputs of a new reduce job: for each ``output`` input the list of the upstream
    values, one per run; the other inputs as for any job."""
    empty: dict[str, dict[str, Any]] = {name: {} for name in reduce.upstream_names()}
    inputs, needs_user = resolve_inputs(reduce, empty)
    for task_input in reduce.inputs:
        source = task_input.source
        if source.mode == "output" and source.task in by_name:
            task_id = by_name[source.task].id
            inputs[task_input.key] = [
                run.outputs[task_id].get(source.key or "") for run in runs.values()
            ]
    return inputs, JobState.WAITING if needs_user else JobState.QUEUED
