"""The server's background chores (sweeping expired leases, writing down when tokens were
used; on PostgreSQL folding the counts' changes) around its start and stop, on SQLite and
PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

from fastapi.testclient import TestClient

from runyard.operations import Runyard
from runyard.server.app import create_app
from runyard.settings import Settings
from runyard.store import workers


def test_a_server_stops_only_once_its_chore_in_progress_has_finished(
    tmp_path: Path, database_url: str
) -> None:
    # A chore cancelled mid-call would go on in its thread with a database connection that
    # the store, closed meanwhile, no longer closes (PostgreSQL warns of it when collected).
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url, lease_seconds=1)
    ry = Runyard(settings).open()
    said: list[str] = []
    sweeping, release = threading.Event(), threading.Event()
    sweep = ry.leases.expire_leases

    def slow_sweep() -> int:
        sweeping.set()
        release.wait(30)
        said.append("swept")
        return sweep()

    stop = ry.changed.stop

    def stopping() -> None:
        said.append("stopped")
        stop()

    ry.leases.expire_leases = slow_sweep  # type: ignore[method-assign]
    ry.changed.stop = stopping  # type: ignore[method-assign]
    try:
        client = TestClient(create_app(ry))
        client.__enter__()
        assert sweeping.wait(30), "the server never swept the expired leases"
        leaving = threading.Thread(target=client.__exit__, args=(None, None, None))
        leaving.start()
        leaving.join(0.5)  # a server that does not wait would be gone by now
        release.set()
        leaving.join(30)
        assert not leaving.is_alive()
    finally:
        release.set()
        ry.close()
    assert said[:2] == ["swept", "stopped"]


def test_a_server_that_stops_writes_down_the_token_uses_it_has_not_written_yet(
    tmp_path: Path, database_url: str
) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)
    ry = Runyard(settings).open()
    try:
        token = ry.auth.create_worker_token("pc-1")
        with TestClient(create_app(ry)) as client:  # stopped long before TOKEN_USE_SECONDS
            me = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200, me.text
        with ry.store.read() as conn:
            (listed,) = workers.list_worker_tokens(conn)
        assert listed["last_used_at"] is not None
    finally:
        ry.close()
