"""Statements on workers, tokens, server settings and the activity log."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    bindparam,
    delete,
    insert,
    or_,
    select,
    update,
)

from runyard.models import Worker
from runyard.states import JobState
from runyard.store import environments as environment_rows
from runyard.store.jobs import storable
from runyard.store.schema import activity_log, jobs, settings, tokens, workers, workflows


def worker_from_row(row: Row[Any]) -> Worker:
    m = row._mapping
    return Worker(
        id=m["id"],
        name=m["name"],
        provides=tuple(m["provides"]),
        max_jobs=m["max_jobs"],
        version=m["version"],
        last_seen=m["last_seen"],
        max_jobs_limit=m["max_jobs_limit"],
        installs=m["installs"],
        installs_allowed=m["installs_allowed"],
    )


def upsert_worker(
    conn: Connection,
    *,
    name: str,
    provides: list[str],
    max_jobs: int,
    version: str,
    installs: bool = False,
    now: datetime,
) -> int:
    values = {
        "provides": provides,
        "max_jobs": max_jobs,
        "version": version,
        "installs": installs,
        "last_seen": now,
    }
    found = conn.execute(select(workers.c.id).where(workers.c.name == name)).scalar()
    if found is not None:
        conn.execute(update(workers).where(workers.c.id == found).values(**values))
        return int(found)
    key = conn.execute(insert(workers).values(name=name, **values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def get_worker(conn: Connection, name: str) -> Worker | None:
    """The worker, with the states of its environments."""
    row = conn.execute(select(workers).where(workers.c.name == name)).first()
    if row is None:
        return None
    return replace(worker_from_row(row), environments=environment_rows.states(conn, row.id))


def set_installs_allowed(conn: Connection, name: str, allowed: bool) -> bool:
    result = conn.execute(
        update(workers).where(workers.c.name == name).values(installs_allowed=allowed)
    )
    return result.rowcount > 0


def name_of(conn: Connection, worker_id: int) -> str | None:
    return conn.execute(select(workers.c.name).where(workers.c.id == worker_id)).scalar()


def list_workers(conn: Connection) -> list[Worker]:
    """Every worker, with the states of its environments."""
    found = environment_rows.states_by_worker(conn)
    return [
        replace(worker_from_row(r), environments=found.get(r.id, ()))
        for r in conn.execute(select(workers).order_by(workers.c.name))
    ]


def set_last_seen(conn: Connection, name: str, now: datetime) -> None:
    conn.execute(update(workers).where(workers.c.name == name).values(last_seen=now))


def set_limit(conn: Connection, name: str, limit: int | None) -> bool:
    result = conn.execute(
        update(workers).where(workers.c.name == name).values(max_jobs_limit=limit)
    )
    return result.rowcount == 1


def running_jobs(conn: Connection, worker_id: int | None = None) -> dict[int, list[int]]:
    """{worker id: serials of its Running jobs} (of one worker, or of all)."""
    query = select(jobs.c.worker_id, jobs.c.serial).where(
        jobs.c.state == JobState.RUNNING.value, jobs.c.worker_id.is_not(None)
    )
    if worker_id is not None:
        query = query.where(jobs.c.worker_id == worker_id)
    found: dict[int, list[int]] = {}
    for owner, serial in conn.execute(query.order_by(jobs.c.serial)):
        found.setdefault(int(owner), []).append(int(serial))
    return found


def insert_token(conn: Connection, *, token_hash: str, kind: str, name: str, now: datetime) -> None:
    conn.execute(insert(tokens).values(token_hash=token_hash, kind=kind, name=name, created_at=now))


def note_token_use(conn: Connection, used: dict[str, datetime]) -> None:
    """Record when tokens (by hash) were last used; an older time never replaces a newer one
    (another server process may have written it)."""
    if not used:
        return
    conn.execute(
        update(tokens)
        .where(
            tokens.c.token_hash == bindparam("b_hash"),
            or_(tokens.c.last_used_at.is_(None), tokens.c.last_used_at < bindparam("b_at")),
        )
        .values(last_used_at=bindparam("b_at")),
        [{"b_hash": key, "b_at": at} for key, at in sorted(used.items())],
    )


def find_token(conn: Connection, token_hash: str) -> tuple[str, str] | None:
    """(kind, name) of a token that is not revoked."""
    row = conn.execute(
        select(tokens.c.kind, tokens.c.name).where(
            tokens.c.token_hash == token_hash, tokens.c.revoked_at.is_(None)
        )
    ).first()
    return (row.kind, row.name) if row else None


def list_worker_tokens(conn: Connection) -> list[dict[str, Any]]:
    """The worker tokens that are not revoked, by worker name, then newest first."""
    query = select(tokens.c.id, tokens.c.name, tokens.c.created_at, tokens.c.last_used_at).where(
        tokens.c.kind == "worker", tokens.c.revoked_at.is_(None)
    )
    rows = conn.execute(query.order_by(tokens.c.name, tokens.c.id.desc()))
    return [
        {"id": r.id, "name": r.name, "created_at": r.created_at, "last_used_at": r.last_used_at}
        for r in rows
    ]


def find_token_by_id(conn: Connection, token_id: int) -> dict[str, Any] | None:
    """A user or worker token that is not revoked: its id, kind, name and hash."""
    row = conn.execute(
        select(tokens.c.id, tokens.c.kind, tokens.c.name, tokens.c.token_hash).where(
            tokens.c.id == token_id,
            tokens.c.kind.in_(["user", "worker"]),
            tokens.c.revoked_at.is_(None),
        )
    ).first()
    return dict(row._mapping) if row else None


def revoke_tokens(
    conn: Connection, now: datetime, *, ids: list[int] | None = None, worker: str | None = None
) -> list[str]:
    """Revoke the tokens ``ids``, or every token of ``worker``: the hashes revoked."""
    where: list[ColumnElement[bool]] = [tokens.c.revoked_at.is_(None)]
    if ids is not None:
        where.append(tokens.c.id.in_(ids))
    if worker is not None:
        where += [tokens.c.kind == "worker", tokens.c.name == worker]
    hashes = list(conn.execute(select(tokens.c.token_hash).where(*where)).scalars())
    conn.execute(update(tokens).where(*where).values(revoked_at=now))
    return hashes


def get_setting(conn: Connection, key: str) -> str | None:
    value = conn.execute(select(settings.c.value).where(settings.c.key == key)).scalar()
    return str(value) if value is not None else None


def put_setting_once(conn: Connection, key: str, value: str) -> str:
    """Store ``value`` unless the key has one; return the stored value."""
    existing = get_setting(conn, key)
    if existing is not None:
        return existing
    conn.execute(insert(settings).values(key=key, value=value))
    return value


def put_setting(conn: Connection, key: str, value: str) -> None:
    """Store ``value`` under ``key``, replacing any value it had."""
    if conn.execute(update(settings).where(settings.c.key == key).values(value=value)).rowcount:
        return
    conn.execute(insert(settings).values(key=key, value=value))


def take_setting(conn: Connection, key: str) -> str | None:
    """Delete a setting; its value, None if it had none. On SQLite the deleted value is
    overwritten in the database file (``secure_delete``), not only unlinked."""
    value = get_setting(conn, key)
    if value is None:
        return None
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        was = conn.exec_driver_sql("PRAGMA secure_delete").scalar()
        conn.exec_driver_sql("PRAGMA secure_delete = ON")
    conn.execute(delete(settings).where(settings.c.key == key))
    if sqlite:
        conn.exec_driver_sql(f"PRAGMA secure_delete = {int(was or 0)}")
    return value


def log_activity(
    conn: Connection,
    *,
    actor: str,
    action: str,
    message: str,
    now: datetime,
    level: str = "info",
    workflow_id: int | None = None,
    job_serial: int | None = None,
    address: str | None = None,
) -> None:
    conn.execute(
        insert(activity_log).values(
            address=address,
            at=now,
            actor=actor,
            action=action,
            level=level,
            message=storable(message),
            workflow_id=workflow_id,
            job_serial=job_serial,
        )
    )


def recent_activity(conn: Connection, limit: int = 100) -> list[dict[str, Any]]:
    return find_activity(conn, limit=limit)


def find_activity(
    conn: Connection,
    *,
    limit: int = 100,
    actor: str | None = None,
    action: str | None = None,
    workflow_id: int | None = None,
    before_id: int | None = None,
    visible_to: tuple[str, list[int]] | None = None,
) -> list[dict[str, Any]]:
    """Entries of the activity log, newest first. ``action`` matches a prefix
    (``workflow.`` finds every workflow action); ``visible_to`` (user, workflow ids): only
    that user's actions and those on these workflows."""
    log = activity_log
    query = select(log, workflows.c.name.label("workflow")).outerjoin(
        workflows, workflows.c.id == log.c.workflow_id
    )
    if actor is not None:
        query = query.where(log.c.actor == actor)
    if action is not None:
        query = query.where(log.c.action.startswith(action, autoescape=True))
    if workflow_id is not None:
        query = query.where(log.c.workflow_id == workflow_id)
    if before_id is not None:
        query = query.where(log.c.id < before_id)
    if visible_to is not None:
        user, ids = visible_to
        query = query.where(or_(log.c.actor == user, log.c.workflow_id.in_(ids or [-1])))
    rows = conn.execute(query.order_by(log.c.id.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]
