"""Statements on web UI sessions: rows of the tokens table of kind ``session``, whose name
is the principal the session acts for (``KIND:NAME``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from runyard.store.schema import tokens

KIND = "session"


def insert_session(conn: Connection, *, token_hash: str, principal: str, now: datetime) -> None:
    conn.execute(
        insert(tokens).values(token_hash=token_hash, kind=KIND, name=principal, created_at=now)
    )


def find_session(conn: Connection, token_hash: str) -> tuple[str, datetime] | None:
    """(principal, created_at) of a session that was not ended."""
    row = conn.execute(
        select(tokens.c.name, tokens.c.created_at).where(
            tokens.c.token_hash == token_hash,
            tokens.c.kind == KIND,
            tokens.c.revoked_at.is_(None),
        )
    ).first()
    return (row.name, row.created_at) if row else None


def end_session(conn: Connection, token_hash: str, now: datetime) -> bool:
    result = conn.execute(
        update(tokens)
        .where(tokens.c.token_hash == token_hash, tokens.c.kind == KIND)
        .where(tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount == 1


def delete_sessions_before(conn: Connection, created_before: datetime) -> int:
    """Forget sessions (ended or not) created before ``created_before``."""
    result = conn.execute(
        delete(tokens).where(tokens.c.kind == KIND, tokens.c.created_at < created_before)
    )
    return int(result.rowcount)


def end_sessions_of(conn: Connection, principal: str, now: datetime) -> list[str]:
    """End every session of ``principal`` (``KIND:NAME``): the hashes ended."""
    where = (tokens.c.kind == KIND, tokens.c.name == principal, tokens.c.revoked_at.is_(None))
    ended = list(conn.execute(select(tokens.c.token_hash).where(*where)).scalars())
    conn.execute(update(tokens).where(*where).values(revoked_at=now))
    return ended
