"""The security tier: the real ``runyard server`` (SQLite in a temporary data directory) on
a loopback port, holding real data, called by each kind of caller."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from runyard.packages import folder_zip_bytes
from tests.acceptance.conftest import Installation, start_server, stop
from tests.conftest import TASK_TYPES, WORKFLOWS


@dataclass
class Lab:
    """A running server with a started workflow, its runs and jobs (one of them Running
    under a worker's lease), and the tokens of its callers."""

    installation: Installation
    admin_token: str
    worker_token: str
    userdata_token: str
    user_token: str  # bob's: a plain user with whom Linear is shared to operate
    objects: dict[str, Any]  # real values for path and query parameters, by name

    @property
    def url(self) -> str:
        return self.installation.url


def _populate(url: str, admin_token: str, userdata: Path) -> tuple[str, str, str, dict[str, Any]]:
    """Fill the server with a workflow, runs and jobs, a stored file and a User Data
    folder; a worker token, a User Data token, and the real objects that parameters may
    name; and bob, a plain user with whom Linear is shared to operate, and his token."""
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {admin_token}"}, timeout=30
    ) as admin:

        def call(method: str, path: str, **kwargs: Any) -> Any:
            response = admin.request(method, path, **kwargs)
            assert response.status_code < 400, (method, path, response.text)
            return response.json()

        for folder in [*sorted(TASK_TYPES.iterdir()), WORKFLOWS / "Linear"]:
            call("POST", "/api/packages", content=folder_zip_bytes(folder))
        call("POST", "/api/workflows/Linear/start")
        jobs = [
            call(
                "POST",
                "/api/workflows/Linear/runs",
                json={"task": "Source", "outputs": {"value": n}},
            )
            for n in range(3)
        ]
        call("POST", "/api/workflows", json={"name": "Empty", "remarks": "no tasks"})
        worker_token = call("POST", "/api/tokens/worker", json={"name": "w1"})["token"]
        worker = {"Authorization": f"Bearer {worker_token}"}
        call("POST", "/api/workers/register", json={"name": "w1", "max_jobs": 2}, headers=worker)
        claimed = call(
            "POST", "/api/workers/claim", json={"worker": "w1", "max": 1}, headers=worker
        )
        stored = call("POST", "/api/files", params={"filename": "a.txt"}, content=b"some bytes")
        (userdata / "scans").mkdir(parents=True)
        (userdata / "scans" / "a.txt").write_text("a User Data file")
        latin1 = os.path.join(os.fsencode(userdata), b"r\xe9sultat.txt")  # listed by default
        with open(latin1, "wb") as f:  # a name that is not UTF-8 (issue 19: listing it was 500)
            f.write(b"from an old share")
        call("PUT", "/api/userdata/mappings", json={"root": "/Data/", "folder": str(userdata)})
        scopes = [[operation, "/Data/"] for operation in ("list", "read", "write")]
        userdata_token = call("POST", "/api/userdata/tokens", json={"scopes": scopes})["token"]
        call("POST", "/api/users", json={"name": "bob", "password": "bob's long password"})
        call("PUT", "/api/workflows/Linear/shares", json={"user": "bob", "level": "operate"})
        user_token = call("POST", "/api/tokens", json={"user": "bob"})["token"]
    assert claimed, "no job to claim"
    objects = {
        "name": "Linear",
        "task": "Double",
        "run_id": jobs[0]["run_id"],
        "serial": claimed[0]["job"]["serial"],
        "version": "1.0.0.0",
        "file_id": stored["file_id"],
        "worker": "w1",
        "path": "/Data/scans/a.txt",
        "root": "/Data/",
    }
    return worker_token, userdata_token, user_token, objects


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """A fresh server for each test, so that what one caller changes never reaches the
    next (and a run is the same whichever pytest process it lands in)."""
    installation = start_server(tmp_path / "lab")
    try:
        worker_token, userdata_token, user_token, objects = _populate(
            installation.url, installation.admin_token, tmp_path / "userdata"
        )
        yield Lab(
            installation,
            installation.admin_token,
            worker_token,
            userdata_token,
            user_token,
            objects,
        )
    finally:
        stop(installation)


# The kinds of caller the API is fuzzed as: each name, and how to get its token from the
# lab (None: no Authorization header at all). Another kind of caller is one more entry.
CALLERS: dict[str, Callable[[Lab], str | None]] = {
    "admin": lambda lab: lab.admin_token,
    "user": lambda lab: lab.user_token,
    "worker": lambda lab: lab.worker_token,
    "userdata": lambda lab: lab.userdata_token,
    "anonymous": lambda lab: None,
}
