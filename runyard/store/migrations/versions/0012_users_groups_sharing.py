"""Users, groups and sharing: ``users`` (argon2 password hashes), ``groups`` with
``group_members`` (the ``admins`` group administers), ``workflow_shares`` (view, operate,
edit), ``workflows.owner_id``, ``files.uploaded_by``, ``tokens.label`` (personal tokens),
``userdata_mappings.groups``, ``activity_log.address`` and ``login_failures`` (rate limits).

The installation's admin becomes the user ``admin``, member of ``admins``: the admin token
is that user's token and every existing workflow is that user's.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 07:30:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_table(
        "groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_groups")),
        sa.UniqueConstraint("name", name=op.f("uq_groups_name")),
    )
    op.create_table(
        "group_members",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["groups.id"],
            name=op.f("fk_group_members_group_id_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_group_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "user_id", name=op.f("pk_group_members")),
    )
    op.create_table(
        "workflow_shares",
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("grantee_kind", sa.String(length=10), nullable=False),
        sa.Column("grantee_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "workflow_id", "grantee_kind", "grantee_id", name=op.f("pk_workflow_shares")
        ),
    )
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=100), nullable=False),
        sa.Column("address", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.create_index("ix_login_failures_at", ["at"], unique=False)
    with op.batch_alter_table("workflows", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("uploaded_by", sa.String(length=100), nullable=True))
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("label", sa.String(length=200), nullable=True))
    with op.batch_alter_table("userdata_mappings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("groups", sa.JSON(), nullable=True))
    with op.batch_alter_table("activity_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("address", sa.String(length=100), nullable=True))
    _admin_user()


def _admin_user() -> None:
    """The user ``admin`` in the group ``admins``, holding the admin token and every
    workflow there is."""
    conn = op.get_bind()
    now = datetime.now(UTC)
    users, groups = (
        sa.table("users", sa.column("id"), sa.column("name"), sa.column("created_at")),
        sa.table("groups", sa.column("id"), sa.column("name"), sa.column("created_at")),
    )
    members = sa.table("group_members", sa.column("group_id"), sa.column("user_id"))
    tokens = sa.table("tokens", sa.column("kind"), sa.column("name"))
    workflows = sa.table("workflows", sa.column("owner_id"))
    conn.execute(sa.insert(users).values(name="admin", created_at=now))
    conn.execute(sa.insert(groups).values(name="admins", created_at=now))
    user_id = conn.execute(sa.select(users.c.id).where(users.c.name == "admin")).scalar_one()
    group_id = conn.execute(sa.select(groups.c.id).where(groups.c.name == "admins")).scalar_one()
    conn.execute(sa.insert(members).values(group_id=group_id, user_id=user_id))
    conn.execute(sa.update(tokens).where(tokens.c.kind == "admin").values(kind="user"))
    conn.execute(
        sa.update(tokens)
        .where(tokens.c.kind == "session", tokens.c.name == "admin:admin")
        .values(name="user:admin")
    )
    conn.execute(sa.update(workflows).values(owner_id=user_id))


def downgrade() -> None:
    conn = op.get_bind()
    tokens = sa.table("tokens", sa.column("kind"), sa.column("name"))
    conn.execute(
        sa.update(tokens)
        .where(tokens.c.kind == "user", tokens.c.name == "admin")
        .values(kind="admin")
    )
    conn.execute(sa.delete(tokens).where(tokens.c.kind == "user"))
    for table, column in [
        ("activity_log", "address"),
        ("userdata_mappings", "groups"),
        ("tokens", "label"),
        ("files", "uploaded_by"),
        ("workflows", "owner_id"),
    ]:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column(column)
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_login_failures_at")
    op.drop_table("login_failures")
    op.drop_table("workflow_shares")
    op.drop_table("group_members")
    op.drop_table("groups")
    op.drop_table("users")
