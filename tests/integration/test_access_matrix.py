"""Who may do what (docs/users.md): every route that touches a workflow, its runs, jobs and
files, and every admin route, called by each kind of caller. A caller that may not see a
workflow is told it does not exist (404), one that may see it but not do this is refused
(403), one without a token is asked for one (401); the others are let through (whatever the
operation then answers, it is not a refusal)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runyard.operations import Runyard
from runyard.packages import folder_zip_bytes
from runyard.server.app import create_app
from runyard.settings import Settings
from tests.conftest import TASK_TYPES, WORKFLOWS

LEVELS = ["view", "operate", "edit", "own"]


@dataclass
class World:
    client: TestClient  # no token: every call names its caller
    tokens: dict[str, str]  # caller -> token
    run_id: int
    serial: int  # a Done job of the shared workflow
    file_id: str  # a file of a job of the shared workflow
    other_serial: int  # a job of the admin's workflow 'Other'

    def call(self, caller: str, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[caller]}"} if caller != "anon" else {}
        return self.client.request(method, path, json=body, headers=headers)


def _user(client: TestClient, admin: dict[str, str], name: str, **extra: Any) -> str:
    client.post(
        "/api/users", json={"name": name, "password": "a long password"} | extra, headers=admin
    ).raise_for_status()
    answer = client.post("/api/tokens", json={"label": "t", "user": name}, headers=admin)
    answer.raise_for_status()
    token: str = answer.json()["token"]
    return token


@dataclass
class Made:
    data_dir: Path
    world: World


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Made]:
    """The world, made once (hashing passwords and importing packages take a while) and
    copied for each test."""
    data_dir = tmp_path_factory.mktemp("access") / "data"
    for world in _make(data_dir):
        yield Made(data_dir=data_dir, world=world)


@pytest.fixture
def world(made: Made, tmp_path: Path) -> Iterator[World]:
    shutil.copytree(made.data_dir, tmp_path / "data")
    ry = Runyard(Settings(data_dir=tmp_path / "data", lease_seconds=3600)).open()
    with TestClient(create_app(ry), raise_server_exceptions=False) as client:
        yield replace(made.world, client=client)
    ry.close()


def _make(data_dir: Path) -> Iterator[World]:
    """alice owns 'Linear' (Source -> Double -> Add) and shares it with viola (view), otto
    (operate) and the group 'editors' (edit; eddie is a member); bob has nothing; the admin
    owns 'Other'. One job of 'Linear' runs under the worker w1."""
    ry = Runyard(Settings(data_dir=data_dir, lease_seconds=3600)).open()
    admin_token = ry.auth.ensure_admin_token()
    assert admin_token is not None
    admin = {"Authorization": f"Bearer {admin_token}"}
    with TestClient(create_app(ry), raise_server_exceptions=False) as client:
        tokens = {"admin": admin_token}
        for name in ["alice", "bob", "viola", "otto", "eddie"]:
            tokens[name] = _user(client, admin, name)
        client.post("/api/groups", json={"name": "editors"}, headers=admin).raise_for_status()
        client.put("/api/groups/editors/members/eddie", headers=admin).raise_for_status()
        alice = {"Authorization": f"Bearer {tokens['alice']}"}
        for folder in sorted(TASK_TYPES.iterdir()):
            client.post(
                "/api/packages", content=folder_zip_bytes(folder), headers=alice
            ).raise_for_status()
        client.post(
            "/api/packages", content=folder_zip_bytes(WORKFLOWS / "Linear"), headers=alice
        ).raise_for_status()
        for share in [
            {"user": "viola", "level": "view"},
            {"user": "otto", "level": "operate"},
            {"group": "editors", "level": "edit"},
        ]:
            client.put("/api/workflows/Linear/shares", json=share, headers=alice).raise_for_status()
        client.post("/api/workflows", json={"name": "Other"}, headers=admin).raise_for_status()
        client.post("/api/workflows/Linear/start", headers=alice).raise_for_status()
        run = client.post(
            "/api/workflows/Linear/runs",
            json={"task": "Source", "outputs": {"value": 1}},
            headers=alice,
        ).json()
        worker_token = client.post("/api/tokens/worker", json={"name": "w1"}, headers=admin).json()[
            "token"
        ]
        tokens["worker"] = worker_token
        worker = {"Authorization": f"Bearer {worker_token}"}
        client.post("/api/workers/register", json={"name": "w1", "max_jobs": 2}, headers=worker)
        claim = client.post(
            "/api/workers/claim", json={"worker": "w1", "max": 1}, headers=worker
        ).json()[0]
        tokens["linear_job"] = claim["token"]
        upload = client.post(
            "/api/files",
            params={"filename": "a.txt"},
            content=b"alice's result",
            headers={"Authorization": f"Bearer {claim['token']}"},
        )
        upload.raise_for_status()
        yield World(
            client=client,
            tokens=tokens,
            run_id=run["run_id"],
            serial=run["serial"],
            file_id=upload.json()["file_id"],
            other_serial=claim["job"]["serial"],
        )
    ry.close()


# The level each user has on 'Linear'.
USER_LEVELS = {
    "bob": None,
    "viola": "view",
    "otto": "operate",
    "eddie": "edit",
    "alice": "own",
    "admin": "own",
}


def _routes(w: World) -> list[tuple[str, str, Any, str]]:
    """(method, path, body, what it needs on 'Linear'), in an order that each caller can
    run through: the ones that change something come last."""
    job, run, linear = w.serial, w.run_id, "/api/workflows/Linear"
    return [
        ("GET", linear, None, "view"),
        ("GET", f"{linear}/export", None, "view"),
        ("GET", f"{linear}/status", None, "view"),
        ("GET", f"{linear}/runs", None, "view"),
        ("GET", f"{linear}/shares", None, "view"),
        ("GET", f"{linear}/task-counts", None, "view"),
        ("GET", f"{linear}/study-table", None, "view"),
        ("POST", f"{linear}/outputs.zip", {"serials": [job]}, "view"),
        ("GET", f"/api/jobs/{job}/outputs.zip", None, "view"),
        ("GET", f"{linear}/timeline", None, "view"),
        ("GET", f"/api/jobs/{job}", None, "view"),
        ("GET", f"/api/jobs/{job}/log", None, "view"),
        ("GET", f"/api/jobs/{job}/history", None, "view"),
        ("GET", f"/api/jobs/{job}/form", None, "view"),
        ("GET", f"/api/jobs/{job}/thumbnail?key=value", None, "view"),
        ("GET", f"/api/jobs/{job}/table?key=value", None, "view"),
        ("GET", f"/api/files/{w.file_id}", None, "view"),
        ("POST", f"{linear}/runs", {"task": "Source", "outputs": {"value": 7}}, "operate"),
        ("PUT", f"/api/runs/{run}/priority", {"priority": "high"}, "operate"),
        ("PUT", f"/api/runs/{run}/name", {"name": "renamed"}, "operate"),
        ("POST", f"/api/runs/{run}/copy", {}, "operate"),
        ("PUT", f"/api/jobs/{job}/name", {"name": "renamed job"}, "operate"),
        ("POST", f"/api/jobs/{job}/restart", None, "operate"),
        ("POST", f"{linear}/jobs/restart", {"filter": {"states": ["Failed"]}}, "operate"),
        ("POST", f"{linear}/rerun-stale", {}, "edit"),
        ("PUT", f"{linear}/layout", {"positions": {"Source": {"x": 1, "y": 2}}}, "edit"),
        ("POST", f"{linear}/tasks", {"name": "T", "task_type": {"name": "Nope"}}, "edit"),
        ("PUT", f"{linear}/shares", {"user": "bob", "level": "view"}, "own"),
        ("POST", f"{linear}/stop", None, "edit"),
        ("POST", f"{linear}/lock", None, "admin"),
        ("POST", f"/api/runs/{run}/obsolete", None, "operate"),
        ("POST", f"{linear}/obsolete", None, "edit"),
    ]


ADMIN_ROUTES = [
    ("GET", "/api/workers", None),
    ("POST", "/api/tokens/worker", {"name": "w9"}),
    ("PUT", "/api/userdata/mappings", {"root": "/X/", "folder": "/nonexistent"}),
    ("POST", "/api/users", {"name": "newcomer", "password": "a long password"}),
    ("POST", "/api/groups", {"name": "newgroup"}),
    ("PUT", "/api/workers/w1/max-jobs", {"max_jobs": 1}),
    ("POST", "/api/workflows/Linear/unlock", None),
]


def _expected(level: str | None, need: str, admin: bool) -> str:
    if need == "admin":
        return "allowed" if admin else "forbidden"
    if level is None:
        return "hidden"
    return "allowed" if LEVELS.index(level) >= LEVELS.index(need) else "forbidden"


def _outcome(response: Any) -> str:
    if response.status_code == 401:
        return "unauthorized"
    if response.status_code == 403:
        return "forbidden"
    if response.status_code == 404 and response.json()["error"]["message"].startswith(
        ("no workflow named ", "no run ", "no job ", "no file ")
    ):
        return "hidden"
    assert response.status_code < 500, response.text
    return "allowed"


@pytest.mark.parametrize("caller", sorted(USER_LEVELS))
def test_each_user_gets_exactly_what_its_level_allows(world: World, caller: str) -> None:
    level = USER_LEVELS[caller]
    got = {
        f"{method} {path}": _outcome(world.call(caller, method, path, body))
        for method, path, body, need in _routes(world)
    }
    want = {
        f"{method} {path}": _expected(level, need, caller == "admin")
        for method, path, body, need in _routes(world)
    }
    assert got == want


@pytest.mark.parametrize("caller", ["anon", "worker", "linear_job"])
def test_callers_that_are_not_users_are_refused_every_user_route(world: World, caller: str) -> None:
    refused = {"anon": {"unauthorized"}, "worker": {"forbidden", "hidden"}}
    for method, path, body, need in _routes(world):
        outcome = _outcome(world.call(caller, method, path, body))
        if caller == "linear_job":
            # A job acts with its workflow's rights (operate), on its own job only.
            if need in ("edit", "own", "admin") or "/api/jobs/" in path or "/runs/" in path:
                assert outcome in {"forbidden", "hidden"}, (method, path, outcome)
            continue
        assert outcome in refused[caller], (method, path, outcome)


@pytest.mark.parametrize("caller", ["anon", "bob", "otto", "worker", "linear_job"])
def test_admin_routes_refuse_everyone_but_admins(world: World, caller: str) -> None:
    want = "unauthorized" if caller == "anon" else "forbidden"
    for method, path, body in ADMIN_ROUTES:
        got = _outcome(world.call(caller, method, path, body))
        assert got in {want, "hidden"} if "Linear" in path else got == want, (method, path, got)


def test_admins_may_use_the_admin_routes(world: World) -> None:
    for method, path, body in ADMIN_ROUTES:
        assert _outcome(world.call("admin", method, path, body)) == "allowed", (method, path)


def test_a_job_of_another_workflow_sees_nothing_of_this_one(world: World) -> None:
    """The job token of Linear's running job, against the admin's workflow 'Other' and its
    files: nothing; and against Linear's other jobs: nothing either."""
    for method, path in [
        ("GET", "/api/workflows/Other"),
        ("GET", "/api/workflows/Other/runs"),
        ("GET", f"/api/jobs/{world.serial}"),
        ("GET", f"/api/jobs/{world.serial}/log"),
    ]:
        assert _outcome(world.call("linear_job", method, path)) in {"forbidden", "hidden"}


def test_listings_show_only_what_the_caller_may_see(world: World) -> None:
    def names(caller: str) -> dict[str, str]:
        answer = world.call(caller, "GET", "/api/workflows").json()
        return {w["name"]: w["your_level"] for w in answer}

    assert names("bob") == {}
    assert names("viola") == {"Linear": "view"}
    assert names("eddie") == {"Linear": "edit"}
    assert names("alice") == {"Linear": "own"}
    assert names("admin") == {"Linear": "own", "Other": "own"}
    bobs = world.call("bob", "GET", "/api/activity", None).json()
    assert all(entry["workflow"] != "Linear" for entry in bobs)
    assert any(
        e["workflow"] == "Linear" for e in world.call("viola", "GET", "/api/activity").json()
    )


def test_a_user_cannot_reach_an_unshared_workflows_events_or_files(world: World) -> None:
    events = world.call("bob", "GET", "/api/workflows/Linear/events")
    assert events.status_code == 404
    assert world.call("bob", "GET", f"/api/files/{world.file_id}").status_code == 404
    found = world.call("bob", "GET", "/api/workflows/NoSuchWorkflow")
    hidden = world.call("bob", "GET", "/api/workflows/Linear")
    assert found.json()["error"] == hidden.json()["error"] | {
        "message": "no workflow named 'NoSuchWorkflow'"
    }
