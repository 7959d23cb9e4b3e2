"""The schema that the migrations build is the schema the code declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from runyard.store import Store
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
        assert version == "0001"
    finally:
        store.dispose()
