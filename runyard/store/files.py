"""Statements on the file store's records."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, select

from runyard.models import StoredFile
from runyard.store.schema import files


def insert_file(
    conn: Connection, stored: StoredFile, *, now: datetime, uploaded_by: str | None = None
) -> None:
    conn.execute(
        insert(files).values(
            id=stored.id,
            sha256=stored.sha256,
            size=stored.size,
            filename=stored.filename,
            job_serial=stored.job_serial,
            created_at=now,
            uploaded_by=uploaded_by,
        )
    )


def uploader(conn: Connection, file_id: str) -> str | None:
    """The user who uploaded a file (None for a job's file)."""
    return conn.execute(select(files.c.uploaded_by).where(files.c.id == file_id)).scalar()


def get_file(conn: Connection, file_id: str) -> StoredFile | None:
    row = conn.execute(select(files).where(files.c.id == file_id)).first()
    if row is None:
        return None
    return StoredFile(
        id=row.id,
        filename=row.filename,
        size=row.size,
        sha256=row.sha256,
        job_serial=row.job_serial,
    )
