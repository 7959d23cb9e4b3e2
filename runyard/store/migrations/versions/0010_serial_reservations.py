"""Job serials reserved for a spawning job: the table of reservations, and on SQLite the jobs
table rebuilt with AUTOINCREMENT, so that a serial reserved (in ``sqlite_sequence``) and not
yet used is never given to another job (PostgreSQL's sequence does this already)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

COLUMN = "serial INTEGER NOT NULL, "
PRIMARY_KEY = "CONSTRAINT pk_jobs PRIMARY KEY (serial), "


def upgrade() -> None:
    op.create_table(
        "serial_reservations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_serial", sa.Integer(), nullable=False),
        sa.Column("first", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serial_reservations")),
    )
    op.create_index("ix_serial_reservations_job_serial", "serial_reservations", ["job_serial"])
    if op.get_bind().dialect.name == "sqlite":
        _jobs_with_autoincrement()


def _jobs_with_autoincrement() -> None:
    """Rebuild ``jobs`` from its own DDL with ``serial INTEGER PRIMARY KEY AUTOINCREMENT``
    (no table refers to it), its rows and its indexes."""
    conn = op.get_bind()
    [table_sql] = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'jobs'"
    ).scalars()
    if "AUTOINCREMENT" in table_sql:
        return
    if COLUMN not in table_sql or PRIMARY_KEY not in table_sql:
        raise RuntimeError("the jobs table is not as migration 0009 left it; cannot rebuild it")
    indexes = list(
        conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs' "
            "AND sql IS NOT NULL"
        ).scalars()
    )
    new_sql = (
        table_sql.replace("CREATE TABLE jobs (", "CREATE TABLE jobs_new (", 1)
        .replace(COLUMN, "serial INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, ", 1)
        .replace(PRIMARY_KEY, "", 1)
    )
    columns = [row[1] for row in conn.exec_driver_sql("PRAGMA table_info(jobs)")]
    names = ", ".join(f'"{c}"' for c in columns)
    conn.exec_driver_sql(new_sql)
    conn.exec_driver_sql(f"INSERT INTO jobs_new ({names}) SELECT {names} FROM jobs")
    conn.exec_driver_sql("DROP TABLE jobs")
    conn.exec_driver_sql("ALTER TABLE jobs_new RENAME TO jobs")
    for index_sql in indexes:
        conn.exec_driver_sql(index_sql)


def downgrade() -> None:
    op.drop_index("ix_serial_reservations_job_serial", table_name="serial_reservations")
    op.drop_table("serial_reservations")
