"""Statements on the User Data mappings (virtual root -> real folder)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from runyard.models import UserDataMapping
from runyard.store.schema import userdata_mappings


def _mapping(row: Row[Any]) -> UserDataMapping:
    return UserDataMapping(
        root=row.root, folder=row.folder, created_at=row.created_at, groups=tuple(row.groups or ())
    )


def list_mappings(conn: Connection) -> list[UserDataMapping]:
    rows = conn.execute(select(userdata_mappings).order_by(userdata_mappings.c.root))
    return [_mapping(row) for row in rows]


def put_mapping(
    conn: Connection, root: str, folder: str, *, now: datetime, groups: tuple[str, ...] = ()
) -> UserDataMapping:
    """Map ``root`` to ``folder`` for ``groups`` (empty: every user), replacing an existing
    mapping of ``root``."""
    values = {"folder": folder, "created_at": now, "groups": list(groups) or None}
    replaced = conn.execute(
        update(userdata_mappings).where(userdata_mappings.c.root == root).values(**values)
    ).rowcount
    if not replaced:
        conn.execute(insert(userdata_mappings).values(root=root, **values))
    return UserDataMapping(root=root, folder=folder, created_at=now, groups=groups)


def delete_mapping(conn: Connection, root: str) -> bool:
    """Remove the mapping of ``root``; whether there was one."""
    deleted = conn.execute(delete(userdata_mappings).where(userdata_mappings.c.root == root))
    return deleted.rowcount > 0
