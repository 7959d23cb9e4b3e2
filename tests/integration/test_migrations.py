"""The schema that the migrations build is the schema the code declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from runyard.store import MIGRATIONS, Store
from runyard.store.schema import metadata


def test_applying_every_migration_gives_the_declared_schema(database_url: str) -> None:
    store = Store(database_url)
    try:
        store.migrate()
        with store.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        store.dispose()


def test_migrating_twice_changes_nothing(database_url: str) -> None:
    store = Store(database_url)
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
