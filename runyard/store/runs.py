"""Statements on runs and entities."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, case, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from runyard.models import Entity, Run
from runyard.states import CLAIMABLE_PRIORITY_RANK
from runyard.store import bulk, counts
from runyard.store.schema import entities, jobs, runs


def from_row(row: Row[Any]) -> Run:
    m = row._mapping
    entity = None
    if m.get("entity_uuid") is not None:
        entity = Entity(uuid=m["entity_uuid"], name=m["entity_name"], type=m["entity_type"])
    return Run(
        id=m["id"],
        workflow_id=m["workflow_id"],
        name=m["name"],
        sort_order=m["sort_order"],
        priority=m["priority"],
        obsolete=m["obsolete"],
        entity=entity,
        study=m["study"],
    )


def _select_runs() -> Any:
    return select(
        runs,
        entities.c.uuid.label("entity_uuid"),
        entities.c.name.label("entity_name"),
        entities.c.type.label("entity_type"),
    ).outerjoin(entities, entities.c.id == runs.c.entity_id)


def entity_id(conn: Connection, entity: Entity) -> int:
    """The id of ``entity``, stored on first use (entities are shared by uuid)."""
    found = conn.execute(select(entities.c.id).where(entities.c.uuid == entity.uuid)).scalar()
    if found is not None:
        return int(found)
    result = conn.execute(
        insert(entities).values(uuid=entity.uuid, name=entity.name, type=entity.type)
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def insert_run(
    conn: Connection,
    *,
    workflow_id: int,
    name: str,
    sort_order: str,
    entity: Entity | None,
    now: datetime,
) -> int:
    result = conn.execute(
        insert(runs).values(
            workflow_id=workflow_id,
            name=name,
            sort_order=sort_order,
            entity_id=entity_id(conn, entity) if entity else None,
            priority="normal",
            obsolete=False,
            created_at=now,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def get_run(conn: Connection, run_id: int) -> Run | None:
    row = conn.execute(_select_runs().where(runs.c.id == run_id)).first()
    return from_row(row) if row else None


def lock_run(conn: Connection, run_id: int) -> None:
    """Serialise job completions within one run (PostgreSQL row lock; on SQLite a write
    transaction holds the whole database already)."""
    if conn.dialect.name == "sqlite":
        return
    conn.execute(select(runs.c.id).where(runs.c.id == run_id).with_for_update())


def lock_runs(conn: Connection, run_ids: Sequence[int]) -> None:
    """``lock_run`` for many runs, in id order (so that two lockers cannot deadlock)."""
    if conn.dialect.name == "sqlite":
        return
    ordered = sorted(run_ids)
    for start in range(0, len(ordered), 5000):
        chunk = ordered[start : start + 5000]
        conn.execute(
            select(runs.c.id).where(runs.c.id.in_(chunk)).order_by(runs.c.id).with_for_update()
        )


def study_run(conn: Connection, workflow_id: int, now: datetime) -> int:
    """The id of the workflow's study run (created on first use), locked: the reduce jobs'
    run, and the lock that serialises every decision about them."""
    found = conn.execute(_STUDY_RUN_LOCKED, {"b_workflow": workflow_id}).scalar()
    if found is not None:
        return int(found)
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(runs)
        .values(
            workflow_id=workflow_id,
            name="(study)",
            sort_order="",
            priority="normal",
            obsolete=False,
            study=True,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["workflow_id"], index_where=text("study"))
    )
    return int(conn.execute(_STUDY_RUN_LOCKED, {"b_workflow": workflow_id}).scalar_one())


# ``runs.study`` written bare, as in the partial index ``uq_runs_study`` (``WHERE study``):
# ``study IS 1`` or ``study = 1`` would not match it, and every run of the workflow is read.
_STUDY_RUN_LOCKED = (
    select(runs.c.id)
    .where(runs.c.workflow_id == bindparam("b_workflow"), text("runs.study"))
    .with_for_update()
)


def list_runs(conn: Connection, workflow_id: int, *, include_obsolete: bool = False) -> list[Run]:
    query = _select_runs().where(runs.c.workflow_id == workflow_id, runs.c.study.is_(False))
    if not include_obsolete:
        query = query.where(runs.c.obsolete.is_(False))
    return [from_row(r) for r in conn.execute(query.order_by(runs.c.sort_order, runs.c.id))]


def last_sort_order(conn: Connection, workflow_id: int) -> str | None:
    value = conn.execute(
        select(func.max(runs.c.sort_order)).where(
            runs.c.workflow_id == workflow_id, runs.c.study.is_(False)
        )
    ).scalar()
    return str(value) if value is not None else None


def set_priority(conn: Connection, run_id: int, priority: str) -> bool:
    """A run's priority, and its jobs' place in the claim order (``queue_order``)."""
    result = conn.execute(update(runs).where(runs.c.id == run_id).values(priority=priority))
    if result.rowcount != 1:
        return False
    requeue(conn, run_id)
    return True


# A job's place in the claim order (``jobs.queue_order``): a rank, then its run's sort order.
# The rank: "0" a high priority run, "1" a normal one, "2" a paused one. A claim reads the
# index of the Queued jobs in this order, below "2" only: the jobs of paused runs are not even
# read. (A workflow's state is not in the rank: changing it would have to rewrite its jobs,
# in the middle of the lock order of the transactions that finish them.)
PRIORITY_RANK = {p.value: str(rank) for p, rank in CLAIMABLE_PRIORITY_RANK.items()}
NOT_CLAIMABLE = "2"  # the rank of a paused run, the first that a claim does not read


def _rank() -> Any:
    """A run's rank (in SQL, of ``runs``)."""
    return case(PRIORITY_RANK, value=runs.c.priority, else_=NOT_CLAIMABLE)


def queue_orders(conn: Connection, run_ids: Sequence[int]) -> dict[int, str]:
    """The ``queue_order`` of new jobs of each of these runs."""
    query = select(runs.c.id, _rank() + runs.c.sort_order)
    rows = conn.execute(query.where(bulk.one_of(conn, runs.c.id, run_ids)))
    return {int(run_id): str(key) for run_id, key in rows}


def queue_order(run_id: Any) -> Any:
    """The ``queue_order`` of a new job of run ``run_id`` (a value or a column, in SQL)."""
    return select(_rank() + runs.c.sort_order).where(runs.c.id == run_id).scalar_subquery()


def requeue(conn: Connection, run_id: int) -> None:
    """Set the rank of the jobs of run ``run_id`` anew, after its priority changed (its row
    is locked already by that change: the order of every finish, the run then its jobs)."""
    rank = select(_rank()).where(runs.c.id == run_id).scalar_subquery()
    conn.execute(
        update(jobs)
        .where(jobs.c.run_id == run_id)
        .values(queue_order=rank + func.substr(jobs.c.queue_order, 2))
    )


def count_runs(conn: Connection, workflow_id: int) -> int:
    """The workflow's live runs (from ``counts``)."""
    return counts.read(conn, workflow_id)[counts.RUNS]


def set_name(conn: Connection, run_id: int, name: str) -> None:
    conn.execute(update(runs).where(runs.c.id == run_id).values(name=name))


def set_obsolete(conn: Connection, run_id: int, obsolete: bool) -> bool:
    """Obsolete or restore a run; False if it already was so."""
    result = conn.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.obsolete.is_(not obsolete))
        .values(obsolete=obsolete)
    )
    return result.rowcount == 1
