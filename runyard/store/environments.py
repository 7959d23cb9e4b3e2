"""Statements on the environments workers make for sets of dependency packages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from runyard.store.schema import worker_environments, workers


def states(conn: Connection, worker_id: int) -> tuple[tuple[str, str], ...]:
    """The worker's environments: (key, state), by key."""
    rows = conn.execute(
        select(worker_environments.c.key, worker_environments.c.state)
        .where(worker_environments.c.worker_id == worker_id)
        .order_by(worker_environments.c.key)
    )
    return tuple((r.key, r.state) for r in rows)


def states_by_worker(conn: Connection) -> dict[int, tuple[tuple[str, str], ...]]:
    """Every worker's environments: worker id -> (key, state), by key."""
    found: dict[int, list[tuple[str, str]]] = {}
    rows = conn.execute(
        select(
            worker_environments.c.worker_id,
            worker_environments.c.key,
            worker_environments.c.state,
        ).order_by(worker_environments.c.key)
    )
    for r in rows:
        found.setdefault(r.worker_id, []).append((r.key, r.state))
    return {worker: tuple(pairs) for worker, pairs in found.items()}


def record(
    conn: Connection,
    worker_id: int,
    key: str,
    *,
    packages: list[dict[str, Any]],
    state: str,
    log: str,
    now: datetime,
) -> None:
    values = {"packages": packages, "state": state, "log": log, "updated_at": now}
    found = conn.execute(
        update(worker_environments)
        .where(worker_environments.c.worker_id == worker_id, worker_environments.c.key == key)
        .values(**values)
    )
    if found.rowcount == 0:
        conn.execute(insert(worker_environments).values(worker_id=worker_id, key=key, **values))


def listed(conn: Connection, worker_name: str | None = None) -> list[dict[str, Any]]:
    """Every environment (of one worker), with its worker's name and its log."""
    query = select(
        workers.c.name.label("worker"),
        worker_environments.c.key,
        worker_environments.c.packages,
        worker_environments.c.state,
        worker_environments.c.log,
        worker_environments.c.updated_at,
    ).join(workers, workers.c.id == worker_environments.c.worker_id)
    if worker_name is not None:
        query = query.where(workers.c.name == worker_name)
    rows = conn.execute(query.order_by(workers.c.name, worker_environments.c.updated_at))
    return [dict(r._mapping) for r in rows]


def in_state(conn: Connection, worker_name: str, state: str) -> list[dict[str, Any]]:
    """The worker's environments in ``state``: their keys and packages."""
    rows = conn.execute(
        select(worker_environments.c.key, worker_environments.c.packages)
        .join(workers, workers.c.id == worker_environments.c.worker_id)
        .where(workers.c.name == worker_name, worker_environments.c.state == state)
        .order_by(worker_environments.c.updated_at)
    )
    return [{"key": r.key, "packages": r.packages} for r in rows]
