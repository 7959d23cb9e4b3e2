"""The schema that the migrations build is the schema the code declares."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from runyard.store import MIGRATIONS, Store, spawns
from runyard.store.schema import metadata


def test_applying_every_migration_gives_the_declared_schema(empty_database_url: str) -> None:
    store = Store(empty_database_url)
    try:
        store.migrate()
        with store.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        store.dispose()


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
