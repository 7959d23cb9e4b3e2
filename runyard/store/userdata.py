"""Statements on the User Data mappings (virtual root -> real folder)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from runyard.models import UserDataMapping
from runyard.store.schema import userdata_mappings


def _mapping(row: Row[Any]) -> UserDataMapping:
    return UserDataMapping(root=row.root, folder=row.folder, created_at=row.created_at)


def list_mappings(conn: Connection) -> list[UserDataMapping]:
    rows = conn.execute(select(userdata_mappings).order_by(userdata_mappings.c.root))
    return [_mapping(row) for row in rows]


def put_mapping(conn: Connection, root: str, folder: str, *, now: datetime) -> UserDataMapping:
    """Map ``root`` to ``folder``, replacing the folder of an existing mapping of ``root``."""
    replaced = conn.execute(
        update(userdata_mappings)
        .where(userdata_mappings.c.root == root)
        .values(folder=folder, created_at=now)
    ).rowcount
    if not replaced:
        conn.execute(insert(userdata_mappings).values(root=root, folder=folder, created_at=now))
    return UserDataMapping(root=root, folder=folder, created_at=now)


def delete_mapping(conn: Connection, root: str) -> bool:
    """Remove the mapping of ``root``; whether there was one."""
    deleted = conn.execute(delete(userdata_mappings).where(userdata_mappings.c.root == root))
    return deleted.rowcount > 0
