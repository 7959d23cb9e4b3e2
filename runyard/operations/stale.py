"""Stale results: a Done job computed from something other than what its task would use now.

A job records what it was computed from: its task type version (``task_type_id``) and its
resolved inputs. It is *stale* when

- its task now uses another task type version,
- an input that the workflow sets (``fixed``, ``none``) has another value now, or an
  ``output`` input differs from the outputs of the Done upstream job now in its run (the task's
  sources were edited, or the upstream job was re-run with other results), or
- an upstream job in its run is stale itself.

Values a user entered (``ui``, ``define_on_first``) are the user's and never make a job stale.
A Done reduce job (one per workflow, in its study run) is stale when its task type version or
an input the workflow sets has changed, or when a job it read (of a task it takes inputs from,
in a run it read) is stale; the lists it read are otherwise kept in step by the reduce itself
(``runyard.operations.reduce``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection

from runyard.models import Job, Task, TaskType
from runyard.packages.documents import shown
from runyard.states import JobState
from runyard.states import resolve_inputs as resolve
from runyard.store import task_types as task_type_rows

SET_BY_WORKFLOW = ("fixed", "none", "output")


def dependency_order(tasks: Iterable[Task]) -> list[Task]:
    """The tasks with every task after the ones it takes inputs from."""
    pending = list(tasks)
    placed: set[str] = set()
    ordered: list[Task] = []
    while pending:
        ready = [t for t in pending if t.upstream_names() <= placed]
        if not ready:  # a cycle cannot be imported or edited in; keep the rest as they are
            ready = pending[:1]
        for task in ready:
            ordered.append(task)
            placed.add(task.name)
            pending.remove(task)
    return ordered


def stale_reasons(
    tasks: list[Task], live: Iterable[Job], task_type: Callable[[int], TaskType]
) -> dict[int, str]:
    """{serial: why} for the stale Done jobs among ``live`` (the live jobs of some runs)."""
    by_run: dict[int, dict[int, Job]] = {}
    for job in live:
        by_run.setdefault(job.run_id, {})[job.task_id] = job
    ordered = [t for t in dependency_order(tasks) if t.task_type.interface.kind != "reduce"]
    reasons: dict[int, str] = {}
    for jobs in by_run.values():
        done = {t.name: jobs[t.id] for t in ordered if t.id in jobs and jobs[t.id].state == "Done"}
        for task in ordered:
            found = done.get(task.name)
            if found is None:
                continue
            why = _why_stale(task, found, done, task_type) or next(
                (f"upstream {n} is stale" for n in sorted(task.upstream_names())
                 if n in done and done[n].serial in reasons),
                None,
            )  # fmt: skip
            if why:
                reasons[found.serial] = why
    reduces = {t.id: t for t in tasks if t.task_type.interface.kind == "reduce"}
    for job in _done_reduce_jobs(by_run, reduces):
        why = _why_stale(reduces[job.task_id], job, {}, task_type) or _stale_upstream(
            reduces[job.task_id], job, by_run, tasks, reasons
        )
        if why:
            reasons[job.serial] = why
    return reasons


def _done_reduce_jobs(by_run: dict[int, dict[int, Job]], reduces: dict[int, Task]) -> list[Job]:
    """The Done jobs of the reduce tasks among the live jobs by run."""
    return [
        job
        for jobs in by_run.values()
        for task_id, job in jobs.items()
        if task_id in reduces and job.state == JobState.DONE
    ]


def read_runs(job: Job) -> list[int]:
    """The ids of the runs a reduce job read (``metadata["runs"]``)."""
    runs = job.metadata.get("runs")
    if not isinstance(runs, list):
        return []
    return [r["id"] for r in runs if isinstance(r, dict) and isinstance(r.get("id"), int)]


def _stale_upstream(
    reduce: Task,
    job: Job,
    by_run: dict[int, dict[int, Job]],
    tasks: list[Task],
    reasons: dict[int, str],
) -> str | None:
    """Why a Done reduce job is stale through what it read: the jobs of the tasks it reads,
    in the runs it read, that are stale (``reasons``), counted by task."""
    read = reduce.upstream_names()
    ids = {t.id: t.name for t in tasks if t.name in read}
    stale_runs: dict[str, int] = {}
    for run_id in read_runs(job):
        jobs = by_run.get(run_id, {})
        for task_id, name in ids.items():
            upstream = jobs.get(task_id)
            if upstream is not None and upstream.serial in reasons:
                stale_runs[name] = stale_runs.get(name, 0) + 1
    if not stale_runs:
        return None
    return "; ".join(
        f"upstream {name} is stale in {n} run{'s' if n != 1 else ''}"
        for name, n in sorted(stale_runs.items())
    )


def _why_stale(
    task: Task, job: Job, done: dict[str, Job], task_type: Callable[[int], TaskType]
) -> str | None:
    if job.task_type_id != task.task_type.id:
        old = task_type(job.task_type_id)
        return f"task type {old.name} {old.version} -> {task.task_type.version}"
    reduce = task.task_type.interface.kind == "reduce"
    if not reduce and not task.upstream_names() <= done.keys():
        return None  # its upstream is being re-run: it will be replaced anyway
    # A reduce's output inputs are lists over the runs, kept in step by the reduce itself.
    upstream = {name: done[name].outputs if name in done else {}
                for name in task.upstream_names()}  # fmt: skip
    expected, _ = resolve(task, upstream)
    for task_input in task.inputs:
        key, mode = task_input.key, task_input.source.mode
        if reduce and mode == "output":
            continue
        if mode in SET_BY_WORKFLOW and job.inputs.get(key) != expected.get(key):
            if mode == "output":
                return f"input {key}: the result of {task_input.source.task} changed"
            return f"input {key}: {shown(job.inputs.get(key))} -> {shown(expected.get(key))}"
    return None


def provenance(job: Job, task_type: TaskType) -> dict[str, Any]:
    """What a job was computed from: task type and version, resolved inputs, a hash of both
    (its configuration), the worker."""
    made_of = {"task_type": [task_type.name, task_type.version], "inputs": job.inputs}
    digest = hashlib.sha256(json.dumps(made_of, sort_keys=True, default=str).encode())
    return {
        "task_type": {"name": task_type.name, "version": task_type.version},
        "inputs": job.inputs,
        "configuration": digest.hexdigest()[:16],
        "worker": job.worker,
        "computed": job.state == JobState.DONE,
    }


def stale_in(conn: Connection, tasks: list[Task], jobs: Iterable[Job]) -> dict[int, str]:
    """``stale_reasons`` with the task type versions read from the store."""
    versions: dict[int, TaskType] = {}

    def task_type(task_type_id: int) -> TaskType:
        if task_type_id not in versions:
            found = task_type_rows.get(conn, task_type_id)
            assert found is not None
            versions[task_type_id] = found
        return versions[task_type_id]

    return stale_reasons(tasks, jobs, task_type)
