"""Users, groups, personal tokens, log ins and their limits (docs/users.md), on each
backend."""

from __future__ import annotations

from pathlib import Path

from runyard.operations.users import MAX_FAILURES_PER_ACCOUNT
from tests.integration.conftest import Server, error

PASSWORD = "correct horse battery"


def _add(server: Server, name: str, **extra: object) -> None:
    answer = server.client.post("/api/users", json={"name": name, "password": PASSWORD} | extra)
    assert answer.status_code == 200, answer.text


def _login(server: Server, name: str, password: str = PASSWORD) -> object:
    return server.client.post(
        "/ui/login", json={"name": name, "password": password}, headers={"Authorization": ""}
    )


def test_the_admin_token_is_the_admin_users(server: Server) -> None:
    me = server.client.get("/api/me").json()
    assert me == {"kind": "admin", "name": "admin", "admin": True, "groups": ["admins"]}


def test_a_user_logs_in_with_its_password_and_a_wrong_one_is_refused(server: Server) -> None:
    _add(server, "alice")
    ok = _login(server, "alice")
    assert ok.status_code == 200 and ok.json()["name"] == "alice"  # type: ignore[attr-defined]
    assert ok.json()["admin"] is False  # type: ignore[attr-defined]
    wrong = _login(server, "alice", "not the password")
    unknown = _login(server, "nobody", "not the password")
    assert wrong.status_code == unknown.status_code == 403  # type: ignore[attr-defined]
    assert error(wrong)["message"] == error(unknown)["message"]  # no telling which was wrong


def test_too_many_failed_log_ins_are_refused_for_a_while(server: Server) -> None:
    _add(server, "alice")
    for _ in range(MAX_FAILURES_PER_ACCOUNT):
        assert _login(server, "alice", "guess guess").status_code == 403  # type: ignore[attr-defined]
    refused = _login(server, "alice")  # even the right password, for now
    assert refused.status_code == 429  # type: ignore[attr-defined]
    assert "too many failed log ins for this account" in error(refused)["message"]
    _add(server, "bob")
    assert _login(server, "bob").status_code == 200  # type: ignore[attr-defined]


def test_user_names_and_passwords_are_checked(server: Server) -> None:
    short = server.client.post("/api/users", json={"name": "carol", "password": "short"})
    assert short.status_code == 422 and "8 to 1024 characters" in error(short)["message"]
    bad = server.client.post("/api/users", json={"name": "../x", "password": PASSWORD})
    assert bad.status_code == 422 and "not valid" in error(bad)["message"]
    _add(server, "carol")
    again = server.client.post("/api/users", json={"name": "carol", "password": PASSWORD})
    assert again.status_code == 409
    assert [u["name"] for u in server.client.get("/api/users").json()] == ["admin", "carol"]


def test_personal_tokens_are_shown_once_listed_without_the_secret_and_revoked(
    server: Server,
) -> None:
    _add(server, "alice")
    made = server.client.post("/api/tokens", json={"label": "laptop", "user": "alice"}).json()
    alice = server.as_token(made["token"])
    assert server.client.get("/api/me", headers=alice).json()["name"] == "alice"
    listed = server.client.get("/api/tokens", headers=alice).json()
    assert [(t["label"], t["user"]) for t in listed] == [("laptop", "alice")]
    assert "token" not in listed[0]
    revoked = server.client.delete(f"/api/tokens/{listed[0]['id']}", headers=alice)
    assert revoked.status_code == 200
    assert server.client.get("/api/me", headers=alice).status_code == 401


def test_a_user_may_not_make_tokens_for_others_or_revoke_theirs(server: Server) -> None:
    _add(server, "alice")
    _add(server, "bob")
    alice = server.as_token(
        server.client.post("/api/tokens", json={"user": "alice"}).json()["token"]
    )
    for_bob = server.client.post("/api/tokens", json={"user": "bob"}, headers=alice)
    assert for_bob.status_code == 403
    bobs = server.client.post("/api/tokens", json={"user": "bob"}).json()
    admin_list = server.client.get("/api/tokens", params={"everyone": True}).json()
    bob_id = next(t["id"] for t in admin_list if t["user"] == "bob")
    assert server.client.delete(f"/api/tokens/{bob_id}", headers=alice).status_code == 404
    assert server.client.get("/api/me", headers=server.as_token(bobs["token"])).status_code == 200


def test_a_disabled_user_can_neither_log_in_nor_use_its_tokens(server: Server) -> None:
    _add(server, "alice")
    token = server.client.post("/api/tokens", json={"user": "alice"}).json()["token"]
    server.client.patch("/api/users/alice", json={"disabled": True}).raise_for_status()
    assert server.client.get("/api/me", headers=server.as_token(token)).status_code == 401
    assert _login(server, "alice").status_code == 403  # type: ignore[attr-defined]
    server.client.patch("/api/users/alice", json={"disabled": False}).raise_for_status()
    assert _login(server, "alice").status_code == 200  # type: ignore[attr-defined]


def test_the_last_admin_cannot_be_disabled_or_leave_the_admins(server: Server) -> None:
    refused = server.client.patch("/api/users/admin", json={"disabled": True})
    assert refused.status_code == 409 and "last enabled admin" in error(refused)["message"]
    leave = server.client.delete("/api/groups/admins/members/admin")
    assert leave.status_code == 409
    assert server.client.delete("/api/groups/admins").status_code == 409


def test_a_user_changes_its_own_password_with_the_current_one(server: Server) -> None:
    _add(server, "alice")
    alice = server.as_token(
        server.client.post("/api/tokens", json={"user": "alice"}).json()["token"]
    )
    new = {"password": "a brand new password"}
    wrong = server.client.put(
        "/api/users/alice/password", json=new | {"current": "nope nope"}, headers=alice
    )
    assert wrong.status_code == 403
    ok = server.client.put(
        "/api/users/alice/password", json=new | {"current": PASSWORD}, headers=alice
    )
    assert ok.status_code == 200
    assert _login(server, "alice", "a brand new password").status_code == 200  # type: ignore[attr-defined]
    other = server.client.put("/api/users/admin/password", json=new, headers=alice)
    assert other.status_code == 403


def test_groups_and_their_members(server: Server) -> None:
    _add(server, "alice")
    server.client.post("/api/groups", json={"name": "imaging"}).raise_for_status()
    server.client.put("/api/groups/imaging/members/alice").raise_for_status()
    groups = {g["name"]: g["members"] for g in server.client.get("/api/groups").json()}
    assert groups == {"admins": ["admin"], "imaging": ["alice"]}
    missing = server.client.put("/api/groups/imaging/members/nobody")
    assert missing.status_code == 404 and "no user named 'nobody'" in error(missing)["message"]


def test_user_data_mappings_for_groups(server: Server, tmp_path: Path) -> None:
    """A mapping for a group is listed to, and usable by, its members only."""
    _add(server, "alice")
    _add(server, "bob")
    (tmp_path / "scans").mkdir()
    server.client.post("/api/groups", json={"name": "imaging"}).raise_for_status()
    server.client.put("/api/groups/imaging/members/alice").raise_for_status()
    mapped = server.client.put(
        "/api/userdata/mappings",
        json={"root": "/Scans/", "folder": str(tmp_path / "scans"), "groups": ["imaging"]},
    )
    assert mapped.status_code == 200, mapped.text
    tokens = {
        name: server.as_token(
            server.client.post("/api/tokens", json={"user": name}).json()["token"]
        )
        for name in ["alice", "bob"]
    }
    alice = server.client.get("/api/userdata/mappings", headers=tokens["alice"]).json()
    assert [(m["root"], m["folder"]) for m in alice] == [("/Scans/", None)]  # no real path
    assert server.client.get("/api/userdata/mappings", headers=tokens["bob"]).json() == []
    scopes = {"scopes": [["list", "/Scans/"]]}
    ok = server.client.post("/api/userdata/tokens", json=scopes, headers=tokens["alice"])
    assert ok.status_code == 200
    refused = server.client.post("/api/userdata/tokens", json=scopes, headers=tokens["bob"])
    assert refused.status_code == 404 and "no User Data root covers" in error(refused)["message"]
    unknown = server.client.put(
        "/api/userdata/mappings",
        json={"root": "/X/", "folder": str(tmp_path / "scans"), "groups": ["nope"]},
    )
    assert unknown.status_code == 404


def test_the_activity_log_says_who_did_what_from_where(server: Server) -> None:
    _add(server, "alice")
    entries = server.client.get("/api/activity", params={"action": "user."}).json()
    assert [(e["actor"], e["action"], e["address"]) for e in entries] == [
        ("admin", "user.add", "testclient")
    ]
    assert entries[0]["message"] == "added user alice"
    assert server.client.get("/api/activity", params={"actor": "nobody"}).json() == []
