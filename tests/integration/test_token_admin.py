"""Admins list, revoke and rotate worker tokens and the admin token (SQLite and PostgreSQL):
never the tokens themselves in a list, a revoked or rotated token refused at once (also where
it was looked up a moment ago), and nothing of it for anyone but admins."""

from __future__ import annotations

import stat
import time
from datetime import datetime, timedelta
from typing import Any

from runyard.errors import Unauthorized
from runyard.operations import Runyard
from runyard.operations.auth import token_hash
from runyard.settings import Settings
from runyard.store import workers
from tests.integration.conftest import Server, error


def worker_token(server: Server, name: str) -> str:
    answer = server.client.post("/api/tokens/worker", json={"name": name})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["token"]
    return token


def all_tokens(server: Server) -> list[dict[str, Any]]:
    """Every token an admin lists: the personal ones, the worker tokens, the admin token."""
    answer = server.client.get("/api/tokens", params={"everyone": True, "workers": True})
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()
    return found


def who(server: Server, token: str) -> int:
    """The status of ``GET /api/me`` with ``token`` (which looks it up, and caches it)."""
    return server.client.get("/api/me", headers=server.as_token(token)).status_code


def user_token(server: Server, name: str) -> str:
    server.client.post("/api/users", json={"name": name, "password": None}).raise_for_status()
    answer = server.client.post("/api/tokens", json={"user": name, "label": "laptop"})
    token: str = answer.json()["token"]
    return token


def test_an_admin_lists_worker_tokens_and_the_admin_token_without_their_secrets(
    server: Server,
) -> None:
    secret = worker_token(server, "pc-1")
    listed = all_tokens(server)
    kinds = {(t["kind"], t["name"]) for t in listed}
    assert {("admin", "admin"), ("worker", "pc-1")} <= kinds
    assert all(t["created_at"] and "last_used_at" in t for t in listed)
    assert secret not in str(listed) and all("token" not in t for t in listed)
    alice = server.as_token(user_token(server, "alice"))
    mine = server.client.get("/api/tokens", headers=alice).json()
    assert [(t["kind"], t["name"]) for t in mine] == [("personal", "alice")]
    refused = server.client.get("/api/tokens", params={"workers": True}, headers=alice)
    assert refused.status_code == 403


def test_revoking_a_workers_tokens_refuses_them_at_once(server: Server) -> None:
    secret = worker_token(server, "pc-1")
    other = worker_token(server, "pc-2")
    assert who(server, secret) == 200  # looked up: trusted for a few seconds without asking
    answer = server.client.delete("/api/tokens/worker/pc-1")
    assert answer.status_code == 200 and answer.json()["revoked"] == 1, answer.text
    assert who(server, secret) == 401
    assert who(server, other) == 200
    assert "pc-1" not in [t["name"] for t in all_tokens(server)]
    again = server.client.delete("/api/tokens/worker/pc-1")
    assert again.status_code == 404 and "pc-1" in error(again)["message"]


def test_a_worker_token_is_revoked_by_its_id_too(server: Server) -> None:
    secret = worker_token(server, "pc-1")
    assert who(server, secret) == 200
    [listed] = [t for t in all_tokens(server) if t["name"] == "pc-1"]
    assert server.client.delete(f"/api/tokens/{listed['id']}").status_code == 200
    assert who(server, secret) == 401


def test_rotating_a_worker_token_gives_a_new_one_and_refuses_the_old_at_once(
    server: Server,
) -> None:
    old = worker_token(server, "pc-1")
    assert who(server, old) == 200
    answer = server.client.post("/api/tokens/worker/pc-1/rotate")
    assert answer.status_code == 200, answer.text
    new = answer.json()["token"]
    assert new.startswith("ry_worker_") and new != old and answer.json()["name"] == "pc-1"
    assert who(server, old) == 401
    assert server.client.get("/api/me", headers=server.as_token(new)).json()["name"] == "pc-1"
    unknown = server.client.post("/api/tokens/worker/nobody/rotate")
    assert unknown.status_code == 404 and "runyard token create-worker" in error(unknown)["message"]


def test_rotating_the_admin_token_rewrites_its_file_and_refuses_the_old_one(
    server: Server,
) -> None:
    token_file = server.ry.settings.admin_token_file
    old = token_file.read_text().strip()
    answer = server.client.post("/api/tokens/admin/rotate")
    assert answer.status_code == 200, answer.text
    new = answer.json()["token"]
    assert token_file.read_text().strip() == new != old
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert who(server, old) == 401
    assert server.client.get("/api/me", headers=server.as_token(new)).json()["admin"] is True


def test_the_admin_token_is_rotated_not_revoked(server: Server) -> None:
    [admin] = [t for t in all_tokens(server) if t["kind"] == "admin"]
    answer = server.client.delete(f"/api/tokens/{admin['id']}")
    assert answer.status_code == 422 and "runyard token rotate --admin" in error(answer)["message"]
    assert who(server, server.ry.settings.admin_token_file.read_text().strip()) == 200


def test_only_admins_revoke_or_rotate_worker_and_admin_tokens(server: Server) -> None:
    secret = worker_token(server, "pc-1")
    for token in (user_token(server, "alice"), secret):
        headers = server.as_token(token)
        calls = [
            server.client.delete("/api/tokens/worker/pc-1", headers=headers),
            server.client.post("/api/tokens/worker/pc-1/rotate", headers=headers),
            server.client.post("/api/tokens/admin/rotate", headers=headers),
        ]
        assert [c.status_code for c in calls] == [403, 403, 403]
    assert who(server, secret) == 200


def refused(ry: Runyard, token: str) -> bool:
    try:
        ry.auth.authenticate(token)
    except Unauthorized:
        return True
    return False


def test_a_revocation_reaches_the_other_server_processes_at_once(
    server: Server, settings: Settings
) -> None:
    if not settings.effective_database_url.startswith("postgresql"):
        return  # one process serves SQLite
    other = Runyard(settings).open()
    try:
        server.ry.changed.start()
        other.changed.start()
        assert server.ry.changed.listening(60) and other.changed.listening(60)
        secret = worker_token(server, "pc-1")
        other.auth.cache_seconds = 3600.0  # only word of the revocation can end its trust
        assert other.auth.authenticate(secret).name == "pc-1"
        server.client.delete("/api/tokens/worker/pc-1").raise_for_status()
        deadline = time.monotonic() + 60
        while not refused(other, secret):
            assert time.monotonic() < deadline, "the other process never heard of it"
            time.sleep(0.05)
    finally:
        other.close()


def test_when_a_token_was_last_used_is_written_down_and_never_goes_back(server: Server) -> None:
    secret = worker_token(server, "pc-1")
    alice = user_token(server, "alice")
    unused = user_token(server, "bob")
    for _ in range(3):  # looked up once, then cached: each use is noted all the same
        assert who(server, secret) == 200 and who(server, alice) == 200
    server.ry.auth.write_token_use()  # what the server does every TOKEN_USE_SECONDS
    listed = {(t["kind"], t["name"]): t for t in all_tokens(server)}
    for key in (("worker", "pc-1"), ("personal", "alice")):
        assert listed[key]["last_used_at"] is not None, listed[key]
        assert listed[key]["last_used_at"] >= listed[key]["created_at"]
    assert listed[("personal", "bob")]["last_used_at"] is None, "never used"
    assert unused not in str(listed)
    # Another server process writing an older use does not move it back.
    before = listed[("worker", "pc-1")]["last_used_at"]
    old = datetime.fromisoformat(listed[("worker", "pc-1")]["created_at"]) - timedelta(days=1)
    with server.ry.store.write() as conn:
        workers.note_token_use(conn, {token_hash(secret): old})
    assert {t["name"]: t for t in all_tokens(server)}["pc-1"]["last_used_at"] == before
    # The admin's own listing was a use of the admin token.
    server.ry.auth.write_token_use()
    assert {t["kind"]: t for t in all_tokens(server)}["admin"]["last_used_at"] is not None
