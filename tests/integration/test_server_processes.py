"""Several server processes on one PostgreSQL database: their notifications to each other
(LISTEN/NOTIFY) and their start (migrations).

Each ``Runyard`` or ``Store`` here stands for one server process: its own engine, its own
notifier and its own listening connection, so a notification from one reaches another only
through PostgreSQL. The waits are long (60 s) and a wait returns before its end only when
the version it waits on changes: a test that passes was woken by a notification, whatever
the machine's speed. What would otherwise wake the waiters too (the claim's half-second
look at the database, the live stream's look every two seconds) is turned off where it
would hide a notification that does not arrive.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient

from runyard.operations import Runyard
from runyard.operations.base import Notifier
from runyard.packages import folder_zip_bytes
from runyard.server import views
from runyard.server.app import create_app
from runyard.settings import Settings
from runyard.store import MIGRATIONS, Store
from runyard.store.notifications import CHANNEL
from tests.conftest import TASK_TYPES, WORKFLOWS

LONG = 60.0  # a wait that ends this late was not woken: the test fails, slowly


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture
def notifiers(postgres_url: str) -> Iterator[tuple[Notifier, Notifier]]:
    """Two started notifiers, each on its own store: two server processes' worth."""
    stores = [Store(postgres_url), Store(postgres_url)]
    found = [Notifier(store.notifications()) for store in stores]
    for notifier in found:
        notifier.start()
    for notifier in found:
        assert notifier.listening(LONG)
    yield found[0], found[1]
    for notifier, store in zip(found, stores, strict=True):
        notifier.stop()
        store.dispose()


def test_a_notification_wakes_the_waiters_of_another_server_process(
    notifiers: tuple[Notifier, Notifier],
) -> None:
    a, b = notifiers
    for sender, receiver in ((b, a), (a, b)):
        seen = receiver.version
        sender.notify()
        receiver.wait(seen, LONG)
        assert receiver.version != seen, "woken by the other process's notification"


def test_many_notifications_in_a_burst_are_sent_as_few(
    notifiers: tuple[Notifier, Notifier],
) -> None:
    a, b = notifiers
    seen = a.version
    for _ in range(1000):
        b.notify()
    a.wait(seen, LONG)
    b.stop()  # sends what is due, then stops
    channel = b._channel
    assert channel is not None and 1 <= channel.sent < 1000


def test_a_listener_whose_connection_was_cut_listens_again_and_wakes_its_waiters(
    postgres_url: str, notifiers: tuple[Notifier, Notifier]
) -> None:
    """What was notified while it could not hear is lost: its waiters are woken once it
    listens again, to look for themselves."""
    a, b = notifiers
    with psycopg.connect(libpq(postgres_url), autocommit=True) as admin:
        seen = a.version
        cut = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE %s",
            (f"LISTEN {CHANNEL}%",),
        ).fetchall()
        assert len(cut) == 2  # both listeners (the statement each ran last)
    a.wait(seen, LONG)
    assert a.version != seen, "woken when it listens again"
    assert b.listening(LONG)
    seen = a.version
    b.notify()
    a.wait(seen, LONG)
    assert a.version != seen, "and it hears the others' notifications again"


def test_on_sqlite_the_notifier_is_this_process_alone(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'runyard.db'}")
    try:
        assert store.notifications() is None
        notifier = Notifier(store.notifications())
        notifier.start()
        assert not notifier.listening()
        notifier.notify()
        assert notifier.version == 1
        notifier.stop()
    finally:
        store.dispose()


def test_servers_starting_together_on_a_new_database_migrate_it_once(postgres_url: str) -> None:
    """Each server brings the schema up to date when it starts; started together (several
    machines after an upgrade), they take turns instead of creating the same tables twice."""
    stores = [Store(postgres_url) for _ in range(3)]
    failures: list[BaseException] = []
    start = threading.Barrier(len(stores))

    def migrate(store: Store) -> None:
        start.wait()
        try:
            store.migrate()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=migrate, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(LONG)
    try:
        assert failures == []
        with stores[0].read() as conn:
            [version] = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
        assert version[0] == ScriptDirectory.from_config(alembic_config()).get_current_head()
    finally:
        for store in stores:
            store.dispose()


def alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


# -- two server processes' worth of the HTTP API ------------------------------------------


class Process:
    """A Runyard and its app served in-process (its lifespan starts its notifier)."""

    def __init__(self, settings: Settings) -> None:
        self.ry = Runyard(settings).open()
        self.client = TestClient(create_app(self.ry), raise_server_exceptions=False)
        self.client.__enter__()

    def close(self) -> None:
        self.client.__exit__(None, None, None)
        self.ry.close()


@pytest.fixture
def two(tmp_path: Path, postgres_url: str) -> Iterator[tuple[Process, Process]]:
    """Server processes A and B on one database and one data directory, Linear imported and
    started through B; both clients act as the admin."""
    settings = Settings(data_dir=tmp_path / "data", database_url=postgres_url)
    a = Process(settings)
    b = Process(settings)
    token = a.ry.auth.ensure_admin_token()
    assert token is not None
    for process in (a, b):
        process.client.headers["Authorization"] = f"Bearer {token}"
    for folder in [*sorted(TASK_TYPES.iterdir()), WORKFLOWS / "Linear"]:
        b.client.post("/api/packages", content=folder_zip_bytes(folder)).raise_for_status()
    b.client.post("/api/workflows/Linear/start").raise_for_status()
    yield a, b
    b.close()
    a.close()


@dataclass
class Waits:
    began: threading.Event  # a wait began
    woken: list[bool]  # per wait that ended: whether a notification ended it


def waits_only_for_notifications(notifier: Notifier, monkeypatch: pytest.MonkeyPatch) -> Waits:
    """Make ``notifier``'s waits ignore their timeout (the claim's half-second look at the
    database): only a notification ends them before ``LONG``."""
    original = notifier.wait
    waits = Waits(began=threading.Event(), woken=[])

    def wait(seen: int, timeout: float) -> None:
        waits.began.set()
        original(seen, LONG)
        waits.woken.append(notifier.version != seen)

    monkeypatch.setattr(notifier, "wait", wait)
    return waits


def test_a_claim_waiting_on_one_server_process_is_woken_by_a_run_created_on_another(
    two: tuple[Process, Process], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = two
    a.client.post("/api/workers/register", json={"name": "w1", "max_jobs": 1}).raise_for_status()
    waits = waits_only_for_notifications(a.ry.changed, monkeypatch)
    answers: list[Any] = []
    claim = threading.Thread(
        target=lambda: answers.append(
            a.client.post("/api/workers/claim", json={"worker": "w1", "max": 1, "wait": LONG})
        )
    )
    claim.start()
    assert waits.began.wait(LONG), "the claim waits (nothing is Queued yet)"
    job = b.client.post(
        "/api/workflows/Linear/runs", json={"task": "Source", "outputs": {"value": 4}}
    )
    job.raise_for_status()
    claim.join(LONG + 10)
    assert waits.woken and all(waits.woken), "each wait of the claim ended by a notification"
    [answer] = answers
    assert answer.status_code == 200, answer.text
    [claimed] = answer.json()
    assert claimed["task_type"]["name"] == "Test.Double"
    assert claimed["job"]["inputs"] == {"value": 4}


def test_the_live_runs_table_of_one_server_process_shows_a_run_created_on_another(
    two: tuple[Process, Process], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream (``GET /api/workflows/{name}/events``) of A sends a ``changed`` event for
    a run created through B; its look at the database every two seconds is turned off, so
    only the notification can tell it."""
    a, b = two
    monkeypatch.setattr(views, "RECHECK_SECONDS", 3600.0)

    async def watch() -> list[str]:
        stream = views._changes(a.ry, "Linear", a.ry.views.fingerprint("Linear"))

        async def next_event() -> str:
            while not (text := await anext(stream)).startswith("event:"):
                pass  # a keep-alive comment
            return text

        events = [await next_event()]
        await asyncio.to_thread(
            lambda: b.client.post(
                "/api/workflows/Linear/runs", json={"task": "Source", "outputs": {"value": 1}}
            ).raise_for_status()
        )
        events.append(await asyncio.wait_for(next_event(), LONG))
        return events  # the stream is closed with the loop

    events = asyncio.run(watch())
    assert '"runs":0' in events[0] and '"runs":1' in events[-1], events
