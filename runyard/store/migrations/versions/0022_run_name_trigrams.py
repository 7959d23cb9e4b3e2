"""ix_runs_name_trgm (PostgreSQL): a trigram index on the runs' names, so that the runs
table's name filter (``name ILIKE '%text%'``) reads the index instead of every name

``pg_trgm`` is a trusted extension (PostgreSQL 13 and later): a role that may create objects
in the database may install it. Where it cannot be installed (an older server, a role
without that right, a server without the contrib modules), the migration says so and goes
on: the name filter still works, by reading every name (docs/deployment.md says how to add
the index later). SQLite has no such index.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 02:20:00
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

log = logging.getLogger("runyard.store")

INDEX = "ix_runs_name_trgm"
LATER = f"CREATE EXTENSION pg_trgm; CREATE INDEX {INDEX} ON runs USING gin (name gin_trgm_ops);"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        log.warning(
            "cannot install PostgreSQL's pg_trgm extension (%s): the runs table's name "
            "filter will read every name. A superuser can add it later: %s",
            reason,
            LATER,
        )
        return
    op.create_index(
        INDEX,
        "runs",
        ["name"],
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")
