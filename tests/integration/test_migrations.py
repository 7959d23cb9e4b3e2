"""The schema that the migrations build is the schema the code declares."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from runyard.store import MIGRATIONS, Store, spawns
from runyard.store.schema import metadata
from tests.conftest import fresh_postgres_database, postgres_admin_url


def test_applying_every_migration_gives_the_declared_schema(empty_database_url: str) -> None:
    store = Store(empty_database_url)
    try:
        store.migrate()
        with store.engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={"compare_type": True, "include_object": _declared_for(store.dialect)},
            )
            assert compare_metadata(context, metadata) == []
    finally:
        store.dispose()


def _declared_for(dialect: str) -> Callable[..., bool]:
    """Leave out of the comparison what the schema declares for another dialect only
    (``Index(...).ddl_if(dialect=...)``), which alembic does not know of."""

    def include(obj: Any, name: Any, type_: str, reflected: bool, compare_to: Any) -> bool:
        declared = compare_to if reflected else obj
        condition = getattr(declared, "_ddl_if", None)
        return condition is None or condition.dialect in (None, dialect)

    return include


def test_migrating_twice_changes_nothing(empty_database_url: str) -> None:
    store = Store(empty_database_url)
    try:
        store.migrate()
        store.migrate()
        with store.engine.connect() as conn:
            version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        assert version == _head()
    finally:
        store.dispose()


def test_a_role_that_may_not_install_pg_trgm_migrates_without_the_trigram_index(
    caplog: pytest.LogCaptureFixture,
) -> None:
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip("no PostgreSQL: run the suite with scripts/test")
    role = "ry_plain_" + secrets.token_hex(4)
    engine = sa.create_engine(admin.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN"))  # not the database's owner
    try:
        with fresh_postgres_database() as url:
            owner = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
            with owner.begin() as conn:  # tables in the public schema, and nothing more
                conn.execute(sa.text(f"GRANT CREATE ON SCHEMA public TO {role}"))
            owner.dispose()
            store = Store(url.replace("postgresql://postgres@", f"postgresql://{role}@", 1))
            try:
                store.migrate()
                with store.engine.connect() as conn:
                    indexes = {i["name"] for i in sa.inspect(conn).get_indexes("runs")}
                    version = conn.exec_driver_sql("SELECT version_num FROM alembic_version")
                    assert version.scalar() == _head()
            finally:
                store.dispose()
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP ROLE {role}"))
        engine.dispose()
    assert "ix_runs_name_trgm" not in indexes and "ix_runs_live_name" in indexes
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("cannot install PostgreSQL's pg_trgm" in m and "CREATE INDEX" in m for m in said)


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def test_sqlite_jobs_rebuilt_by_0010_keep_their_rows_and_serials_are_not_given_twice(
    tmp_path: Path,
) -> None:
    """A lab's SQLite database of before 0010: its jobs survive the rebuild with AUTOINCREMENT,
    and a serial reserved after it is never given to a new job."""
    store = Store(f"sqlite:///{tmp_path / 'lab.db'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    now = "2026-01-01 00:00:00.000000"
    try:
        with store.engine.connect() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0009")
            for statement in (
                "INSERT INTO task_types (id, name, version, version_key, kind, display_name, "
                "summary, author, entry_point, dependencies, interface, path, installed_at) "
                f"VALUES (1, 'T', '1.0.0.0', 'k', 'processing', '', '', '', 'main.py', '[]', "
                f"'{{}}', '', '{now}')",
                "INSERT INTO workflows (id, name, state, locked, remarks, created_at, updated_at) "
                f"VALUES (1, 'W', 'Started', 0, '', '{now}', '{now}')",
                "INSERT INTO tasks (id, workflow_id, name, position, task_type_id, inputs, "
                f"created_at) VALUES (1, 1, 'A', 0, 1, '[]', '{now}')",
                "INSERT INTO runs (id, workflow_id, name, sort_order, priority, obsolete, "
                f"created_at) VALUES (1, 1, 'r', 'a0', 'normal', 0, '{now}')",
            ):
                conn.exec_driver_sql(statement)
            for serial in (1, 7):
                conn.exec_driver_sql(
                    "INSERT INTO jobs (serial, workflow_id, run_id, task_id, task_type_id, state, "
                    "inputs, outputs, metadata, error, log, attempt, created_at) VALUES "
                    f"({serial}, 1, 1, 1, 1, 'Obsolete', '{{}}', '{{\"v\": {serial}}}', "
                    f"'{{}}', '', '', 0, '{now}')"
                )
            conn.commit()
        store.migrate()
        with store.write() as conn:
            kept = conn.exec_driver_sql("SELECT serial, outputs FROM jobs ORDER BY serial").all()
            assert kept == [(1, '{"v": 1}'), (7, '{"v": 7}')]
            [(first, last)] = spawns.reserve_serials(conn, 7, 3)
            assert (first, last) == (8, 10)
            conn.exec_driver_sql(
                "INSERT INTO jobs (workflow_id, run_id, task_id, task_type_id, state, inputs, "
                "outputs, metadata, error, log, attempt, created_at) VALUES "
                f"(1, 1, 1, 1, 'Queued', '{{}}', '{{}}', '{{}}', '', '', 0, '{now}')"
            )
            newest = conn.exec_driver_sql("SELECT max(serial) FROM jobs").scalar()
        assert newest == 11, "the next job comes after the reserved serials"
    finally:
        store.dispose()
