"""The storage layer: the only code that sees SQL.

``Store`` owns the engine and hands out transactions; the modules beside it (``jobs``,
``workflows``, ...) hold the statements, as functions of a ``Connection``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError

from runyard.errors import ConfigError

if TYPE_CHECKING:
    import psycopg

    from runyard.store.notifications import Channel

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 0x52756E79  # PostgreSQL advisory lock held while migrating ("Runy")
# libpq's TCP keepalives for the connections that wait for notifications: a database host
# that went away is noticed within about a minute.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
              "keepalives_count": 3}  # fmt: skip


class Store:
    """One database: SQLite (embedded, the default) or PostgreSQL."""

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.url = url
        self.engine = _make_engine(url, pool_size)
        self.dialect = self.engine.dialect.name
        self._turns = WriterTurns() if self.dialect == "sqlite" else None

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that will write: on SQLite it takes the write lock at once, after
        this process's threads that asked before it (``WriterTurns``)."""
        with self._turn(), self.engine.connect() as conn:
            conn.execution_options(runyard_write=True)
            with conn.begin():
                yield conn

    def _turn(self) -> AbstractContextManager[object]:
        return self._turns.turn() if self._turns is not None else nullcontext()

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
            if self.dialect == "postgresql":
                # Servers starting together on one database migrate one after the other:
                # the others wait here, then find nothing left to do.
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            conn.commit()

    def notifications(self) -> Channel | None:
        """Notifications between the server processes of this database (PostgreSQL's
        LISTEN/NOTIFY, on connections of their own); None on SQLite, which one server
        process serves."""
        if self.dialect != "postgresql":
            return None
        from runyard.store.notifications import Channel

        return Channel(self._connect_directly)

    def _connect_directly(self) -> psycopg.Connection[Any]:
        """A new connection outside the pool, in autocommit mode, with the engine's
        connection arguments (PostgreSQL)."""
        import psycopg

        args, params = self.engine.dialect.create_connect_args(self.engine.url)
        params = dict(params) | {"autocommit": True}
        params.setdefault("connect_timeout", 10)
        # A connection that sits waiting must notice a database host that vanished (TCP).
        for key, value in KEEPALIVES.items():
            params.setdefault(key, value)
        conn: psycopg.Connection[Any] = psycopg.connect(*args, **params)
        return conn

    def dispose(self) -> None:
        self.engine.dispose()


class WriterTurns:
    """This process's write transactions on SQLite, one after the other, first come first
    served.

    SQLite has one write lock per database. A transaction that finds it taken does not wait
    in a queue: SQLite's busy handler sleeps and tries again (1, 2, 5, ... up to 100 ms
    between tries), so under many writers a newcomer often takes the lock while an earlier
    one sleeps, and an unlucky request waits seconds (20 clients creating runs: p50 17 ms,
    p99 1.2 s, worst 3 s; docs/performance.md, "Contention"). Here the server's threads wait
    for their turn on a ticket, woken in order as soon as the writer before them commits, and
    SQLite's lock is free when they take it; the busy handler is left for other processes
    (a CLI command on the same data directory). Reentrant: a thread already writing does not
    wait for itself."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._next = 0  # the next ticket to hand out
        self._serving = 0  # the ticket whose turn it is
        self._owner: int | None = None
        self._depth = 0

    @contextmanager
    def turn(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._changed:
            if self._owner != me:
                ticket = self._next
                self._next += 1
                self._changed.wait_for(lambda: self._serving == ticket)
                self._owner = me
            self._depth += 1
        try:
            yield
        finally:
            with self._changed:
                self._depth -= 1
                if self._depth == 0:
                    self._owner = None
                    self._serving += 1
                    self._changed.notify_all()


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
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get("runyard_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
