"""Shared fixtures: a database on each backend, a Runyard on it, the test packages.

Most tests get a database whose schema is already at the newest migration: a copy of one
migrated once per test process (SQLite: the file copied; PostgreSQL: ``CREATE DATABASE ...
TEMPLATE``), since running the migrations took most of an ordinary test's set-up. The tests
of the migrations themselves take ``empty_database_url``."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from runyard.operations import Runyard
from runyard.packages import load_package
from runyard.settings import Settings
from runyard.store import Store

FIXTURES = Path(__file__).parent / "fixtures"
TASK_TYPES = FIXTURES / "task_types"
WORKFLOWS = FIXTURES / "workflows"

# Run order for pytest-xdist (scripts/test: -n 3 --dist loadfile, which hands out whole
# files in this order as processes free up): a long file left for the end keeps one process
# busy while the others idle, so the files known to be long (real servers, workers, Chromium,
# Slurm, outages, fuzzing) start first and the short unit tests fill the end. Each module
# stays whole and keeps its order; no test depends on this order.
SLOW_FIRST = (
    "acceptance/test_worker.py",
    "security/test_openapi.py",
    "acceptance/test_study.py",
    "acceptance/test_outage_retries.py",
    "acceptance/test_cli_edges.py",
    "acceptance/test_slurm.py",
    "acceptance/test_several_servers.py",
    "acceptance/test_outages.py",
    "integration/test_userdata.py",
    "integration/test_server_processes.py",
    "acceptance/",
    "browser/",
    "compat/",
    "security/",
    "integration/",
)


def _run_rank(item: pytest.Item) -> int:
    tests = Path(__file__).parent
    if not item.path.is_relative_to(tests):
        return len(SLOW_FIRST)
    path = item.path.relative_to(tests).as_posix()
    return next(
        (rank for rank, prefix in enumerate(SLOW_FIRST) if path.startswith(prefix)),
        len(SLOW_FIRST),
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_run_rank)  # stable: a module's tests keep their order


def postgres_admin_url() -> str | None:
    url = os.environ.get("RUNYARD_TEST_DATABASE_URL")
    if not url and os.environ.get("RUNYARD_TEST_REQUIRE_POSTGRES"):
        pytest.fail("RUNYARD_TEST_DATABASE_URL is not set but PostgreSQL tests are required")
    return url


def _psycopg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@contextmanager
def fresh_postgres_database(prefix: str = "rytest_", template: str | None = None) -> Iterator[str]:
    """The URL of a fresh PostgreSQL database, empty or a copy of the database ``template``,
    dropped afterwards (skips the test when the suite has no PostgreSQL)."""
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip("no PostgreSQL: run the suite with scripts/test")
    name = prefix + secrets.token_hex(6)
    engine = sa.create_engine(_psycopg(admin), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(
            sa.text(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
        )
    base, _, query = admin.partition("?")
    try:
        yield f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
        engine.dispose()


def migrated(url: str) -> None:
    """Bring the database at ``url`` to the newest migration (and let go of it)."""
    store = Store(url)
    try:
        store.migrate()
    finally:
        store.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file at the newest migration, made once per test process, to copy."""
    path = tmp_path_factory.mktemp("migrated") / "runyard.db"
    migrated(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def migrated_postgres() -> Iterator[str]:
    """The name of a PostgreSQL database at the newest migration, made once per test process,
    to copy (nothing connects to it after: a template must have no connection)."""
    with fresh_postgres_database("rytemplate_") as url:
        migrated(url)
        yield url.partition("?")[0].rsplit("/", 1)[1]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database (no schema), once on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runyard.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database with the newest schema and no rows, once on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "runyard.db"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), path)
        path.chmod(0o600)  # as the server makes its database (docs/security.md)
        yield f"sqlite:///{path}"
        return
    with fresh_postgres_database(template=request.getfixturevalue("migrated_postgres")) as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, lease_seconds=30)


@pytest.fixture
def ry(settings: Settings) -> Iterator[Runyard]:
    instance = Runyard(settings).open()
    yield instance
    instance.close()


def install_test_task_types(ry: Runyard) -> None:
    for folder in sorted(TASK_TYPES.iterdir()):
        package = load_package(folder)
        ry.task_types.install(package)  # type: ignore[arg-type]


@pytest.fixture
def linear(ry: Runyard) -> Runyard:
    """A Runyard with the test task types and the started workflow 'Linear'
    (Source -> Double -> Add with offset 10)."""
    install_test_task_types(ry)
    ry.workflows.import_package(load_package(WORKFLOWS / "Linear"))  # type: ignore[arg-type]
    ry.workflows.set_state("Linear", "Started")
    return ry
