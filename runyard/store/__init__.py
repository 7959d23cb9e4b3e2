"""The storage layer: the only code that sees SQL.

``Store`` owns the engine and hands out transactions; the modules beside it (``jobs``,
``workflows``, ...) hold the statements, as functions of a ``Connection``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import OperationalError

from runyard.errors import ConfigError

MIGRATIONS = Path(__file__).parent / "migrations"


class Store:
    """One database: SQLite (embedded, the default) or PostgreSQL."""

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.url = url
        self.engine = _make_engine(url, pool_size)
        self.dialect = self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that will write: on SQLite it takes the write lock at once."""
        with self.engine.connect() as conn:
            conn.execution_options(runyard_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def migrate(self) -> None:
        """Bring the schema to the newest migration (Alembic ``upgrade head``)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        try:
            conn = self.engine.connect()
        except OperationalError as exc:
            raise ConfigError(
                f"cannot open the database {self.engine.url.render_as_string()}: "
                f"{str(exc.orig).strip().splitlines()[0]}",
                key="RUNYARD_DATABASE_URL",
            ) from None
        with conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            conn.commit()

    def dispose(self) -> None:
        self.engine.dispose()


def _make_engine(url: str, pool_size: int) -> Engine:
    if url.startswith("sqlite"):
        # Keep connections open (a pool): closing the last connection to a WAL database
        # checkpoints it, which would cost milliseconds on every transaction.
        engine = create_engine(url, pool_size=pool_size, max_overflow=20)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    if url.startswith("postgresql"):
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        return create_engine(url, pool_size=pool_size, max_overflow=20, pool_pre_ping=True)
    raise ConfigError(
        f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://USER@HOST/DB",
        key="RUNYARD_DATABASE_URL",
    )


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite would defer it).
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get("runyard_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
