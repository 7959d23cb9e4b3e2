"""Idempotency keys: what a call with an ``Idempotency-Key`` header did, by caller and key,
so that the same call sent again (its answer was lost) is answered as the first was."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, insert, select

from runyard.store.schema import idempotency_keys as keys


def find(conn: Connection, caller: str, key: str) -> tuple[str, int] | None:
    """(request hash, job serial) of the call ``caller`` made with ``key``, if any."""
    row = conn.execute(
        select(keys.c.request, keys.c.job_serial).where(keys.c.caller == caller, keys.c.key == key)
    ).first()
    return (row.request, row.job_serial) if row is not None else None


def remember(
    conn: Connection, caller: str, key: str, request: str, job_serial: int, now: datetime
) -> None:
    """Record the outcome of a keyed call (a unique violation if another made it first)."""
    conn.execute(
        insert(keys).values(
            caller=caller, key=key, request=request, job_serial=job_serial, created_at=now
        )
    )


def forget_before(conn: Connection, cutoff: datetime) -> None:
    """Drop the keys of calls made before ``cutoff``."""
    conn.execute(delete(keys).where(keys.c.created_at < cutoff))
