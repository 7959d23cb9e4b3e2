"""Statements behind the views of the web UI: a page of runs with their live jobs, and a
cheap fingerprint that tells whether a workflow's table changed.

A page of runs is read in two steps: the ids of the page (from the indexes alone, see
migration 0009), then those runs' rows; counting the runs that pass the filters is the other
cost of a page, and each filter has the statement that keeps it to an index scan."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, exists, func, select, text, tuple_

from runyard.models import Job, Run
from runyard.states import JobState
from runyard.store import counts
from runyard.store import runs as run_rows
from runyard.store.schema import activity_log, entities, jobs, runs

LIVE = jobs.c.state != JobState.OBSOLETE.value

# The orders a page of runs can be sorted in: the column and its tie-breakers (the indexes
# ix_runs_live_sort and ix_runs_live_name hold them in this order).
ORDERS = {
    "sort_order": (runs.c.sort_order, runs.c.id),
    "name": (runs.c.name, runs.c.sort_order, runs.c.id),
}
# Which runs a page lists: the live ones (the default), the obsolete ones, or both.
OBSOLETE = ("exclude", "only", "include")


@dataclass(frozen=True, kw_only=True)
class RunFilter:
    """The runs of a page: those with a job in ``state``, with ``name`` in their name (any
    case), among the live runs, the obsolete ones or both (``obsolete``, one of OBSOLETE).
    The workflow's study run (its reduce jobs) is never listed."""

    state: str | None = None
    name: str | None = None
    obsolete: str = "exclude"


def _select_runs() -> Any:
    # The columns that ``runs.from_row`` reads.
    return select(
        runs,
        entities.c.uuid.label("entity_uuid"),
        entities.c.name.label("entity_name"),
        entities.c.type.label("entity_type"),
    ).outerjoin(entities, entities.c.id == runs.c.entity_id)


def _runs_where(conn: Connection, workflow_id: int, which: RunFilter) -> list[Any]:
    """The conditions on the runs themselves (the state filter is a look into their jobs)."""
    where: list[Any] = [runs.c.workflow_id == workflow_id]
    if which.obsolete != "include":
        where.append(runs.c.obsolete.is_(which.obsolete == "only"))
    where.append(runs.c.study.is_(False))
    if which.name:
        where.append(_name_contains(conn, which.name))
    return where


def _name_contains(conn: Connection, name: str) -> Any:
    """The name contains ``name``, any case; ``%`` and ``_`` are plain characters."""
    if conn.dialect.name == "sqlite":
        # SQLite's LIKE ignores the case of ASCII letters, as its lower() folds only those:
        # the same answer as lower(name) LIKE lower(...), without a call per run.
        return runs.c.name.contains(name, autoescape=True)
    return runs.c.name.icontains(name, autoescape=True)


def _has_job_in(state: str) -> Any:
    """The run has a job in ``state`` (index ix_jobs_run_state: one look per run)."""
    return exists().where(jobs.c.run_id == runs.c.id, jobs.c.state == state)


def count_runs(conn: Connection, workflow_id: int, which: RunFilter) -> int:
    """How many runs of the workflow pass the filters."""
    if not which.state and not which.name:
        found = counts.read(conn, workflow_id)
        live, obsolete = found[counts.RUNS], found[counts.OBSOLETE_RUNS]
        return {"exclude": live, "only": obsolete, "include": live + obsolete}[which.obsolete]
    if which.state and not which.name and which.obsolete != "only":
        return _count_in_state(conn, workflow_id, which.state, which.obsolete)
    where = _runs_where(conn, workflow_id, which)
    if which.state:
        where.append(_has_job_in(which.state))
    return int(conn.execute(select(func.count()).select_from(runs).where(*where)).scalar_one())


def _count_in_state(conn: Connection, workflow_id: int, state: str, obsolete: str) -> int:
    """The runs with a job in ``state``, as the database counts them (runyard.store.counts),
    less those of the runs the page leaves out (the study run and, unless ``obsolete`` is
    include, the obsolete runs): few, each looked up once. One statement."""
    # "runs.study" as it is written in the partial index uq_runs_study, so SQLite uses it.
    left_out = [runs.c.workflow_id == workflow_id, text("runs.study")]
    count = counts.runs_with_job_in(workflow_id, state) - _count_with_job(left_out, state)
    if obsolete == "exclude":
        obsolete_runs = [
            runs.c.workflow_id == workflow_id,
            runs.c.obsolete.is_(True),
            runs.c.study.is_(False),
        ]
        count = count - _count_with_job(obsolete_runs, state)
    return int(conn.execute(select(count)).scalar_one())


def _count_with_job(where: list[Any], state: str) -> Any:
    """How many of the runs ``where`` picks have a job in ``state``, as a scalar subquery."""
    return (
        select(func.count()).select_from(runs).where(*where, _has_job_in(state)).scalar_subquery()
    )


def start_from_jobs(
    *, offset: int, limit: int, total: int, runs_in_view: Callable[[], int]
) -> bool:
    """Whether a page filtered by state is found faster from the jobs in that state (read
    them all, sort their runs) than by walking the runs in order and looking into each one's
    jobs until the page is full. No more than a page of runs: from the jobs. Else the walk
    passes about (offset + limit) / density runs, each look about 0.6 times what a run costs
    the other way (measured on SQLite: 0.3 against 0.5 µs): from the jobs when the walk
    would be longer than 1.5 times ``total``. ``runs_in_view()`` (the runs without the
    filters, asked only then) may be an estimate: it picks the plan, never the answer."""
    if total <= limit:
        return True
    runs = max(runs_in_view(), total)
    walk = min(runs, (offset + limit) * runs / total)
    return walk >= 1.5 * total


def page_run_ids(
    conn: Connection,
    workflow_id: int,
    which: RunFilter,
    *,
    offset: int,
    limit: int,
    order: str = "sort_order",
    descending: bool = False,
    from_jobs: bool = False,
    after: Sequence[Any] | None = None,
) -> list[int]:
    """The ids of one page of the runs that pass the filters, in ``order``: from the indexes
    alone (a page deep in the table steps over the runs before it in the index, not in the
    table). With a state filter and ``from_jobs``, starting from the jobs in that state.
    With ``after`` (the key of a run in ``order``, see ``landmarks``), ``offset`` counts from
    the run after it."""
    where = _runs_where(conn, workflow_id, which)
    if after is not None:
        key, mark = tuple_(*ORDERS[order]), tuple_(*after)
        where.append(key < mark if descending else key > mark)
    if which.state and from_jobs:
        with_state = (
            select(jobs.c.run_id)
            .where(jobs.c.workflow_id == workflow_id, jobs.c.state == which.state)
            .distinct()
            .subquery()
        )
        query = select(runs.c.id).select_from(
            with_state.join(runs, runs.c.id == with_state.c.run_id)
        )
    else:
        query = select(runs.c.id)
        if which.state:
            where.append(_has_job_in(which.state))
    ordering = [c.desc() if descending else c for c in ORDERS[order]]
    query = query.where(*where).order_by(*ordering).offset(offset).limit(limit)
    return [int(i) for i in conn.execute(query).scalars()]


def landmarks(
    conn: Connection,
    workflow_id: int,
    which: RunFilter,
    *,
    every: int,
    order: str = "sort_order",
    descending: bool = False,
) -> list[tuple[Any, ...]]:
    """The key in ``order`` (its columns, ORDERS) of every ``every``-th run that passes the
    filters (no name filter): of the runs at offsets every - 1, 2 * every - 1, and so on.
    A page at offset ``k * every + r`` is then the runs after the k-th landmark from offset
    ``r`` on (``page_run_ids(after=...)``): a short walk in the index instead of one past
    ``k * every`` runs. One walk over the index to make them."""
    columns = ORDERS[order]
    ordering = [c.desc() if descending else c for c in columns]
    where = _runs_where(conn, workflow_id, which)
    if which.state:
        where.append(_has_job_in(which.state))
    numbered = (
        select(*columns, func.row_number().over(order_by=ordering).label("position"))
        .where(*where)
        .subquery()
    )
    query = (
        select(*[numbered.c[c.name] for c in columns])
        .where(numbered.c.position % every == 0)
        .order_by(numbered.c.position)
    )
    return [tuple(row) for row in conn.execute(query)]


def runs_by_id(conn: Connection, run_ids: Sequence[int]) -> list[Run]:
    """These runs (with their entities), in the order of ``run_ids``."""
    if not run_ids:
        return []
    query = _select_runs().where(runs.c.id.in_(list(run_ids)))
    found = {r.id: r for r in (run_rows.from_row(row) for row in conn.execute(query))}
    return [found[i] for i in run_ids if i in found]


# The columns of a job that a cell and its stale check read (not its log, which can be
# large, nor its metadata, timings or lease: reading them cost a page most of its time).
_CELL_COLUMNS = (
    jobs.c.serial,
    jobs.c.workflow_id,
    jobs.c.run_id,
    jobs.c.task_id,
    jobs.c.task_type_id,
    jobs.c.state,
    jobs.c.inputs,
    jobs.c.outputs,
    jobs.c.error,
    jobs.c.attempt,
    jobs.c.script_started_at,  # a Running job without it is only claimed
)


def live_jobs_of_runs(conn: Connection, run_ids: Sequence[int]) -> list[Job]:
    """The live jobs of these runs as their cells need them: identity, state, error,
    attempt, inputs and outputs (staleness needs them); the other fields are left empty."""
    if not run_ids:
        return []
    query = select(*_CELL_COLUMNS).where(jobs.c.run_id.in_(list(run_ids)), LIVE)
    return [Job(**row._mapping) for row in conn.execute(query)]


def job_activity(conn: Connection, serial: int, limit: int = 200) -> list[dict[str, Any]]:
    """The activity log entries of one job, oldest first (index ix_activity_log_job)."""
    query = (
        select(activity_log)
        .where(activity_log.c.job_serial == serial)
        .order_by(activity_log.c.id.desc())
        .limit(limit)
    )
    return [dict(r._mapping) for r in reversed(list(conn.execute(query)))]


def study_jobs(conn: Connection, workflow_id: int) -> list[Job]:
    """The live jobs of the workflow's study run (its reduce jobs), as ``live_jobs_of_runs``."""
    # "runs.study" as it is written in the partial index uq_runs_study, so SQLite uses it.
    study = select(runs.c.id).where(runs.c.workflow_id == workflow_id, text("runs.study"))
    run_ids = [int(r) for r in conn.execute(study).scalars()]
    return live_jobs_of_runs(conn, run_ids)


def fingerprint(conn: Connection, workflow_id: int) -> dict[str, Any]:
    """What changes whenever a cell of the workflow's table changes: the live jobs by state
    and the number of runs (from ``counts``), how many times runs changed and how many jobs
    were ever made, and how many Running jobs' scripts started. A job changing state moves
    its count from one state to another; a run made, deleted, obsoleted or renamed and a
    new job (a restart too) count even if the others are as they were. (Changing a run's
    priority does not show here.)"""
    found = counts.read(conn, workflow_id)
    started = conn.execute(
        select(func.count(jobs.c.script_started_at)).where(
            jobs.c.workflow_id == workflow_id, jobs.c.state == JobState.RUNNING.value
        )
    ).scalar_one()
    return {
        "jobs": found.live_jobs(),
        "runs": found[counts.RUNS],
        "runs_changed": found[counts.RUNS_CHANGED],
        # A restarted job that runs and finishes between two readings leaves the counts as
        # they were; the count of jobs made does not.
        "jobs_made": found[counts.JOBS_MADE],
        # Running jobs whose scripts started: a claimed job that starts changes no count above.
        "started": int(started),
    }
