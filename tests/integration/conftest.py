"""Integration fixtures: the HTTP API served in-process (starlette's TestClient) on each
backend, and a job running under a worker's lease."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runyard.operations import Runyard
from runyard.packages import folder_zip_bytes, load_package
from runyard.server.app import create_app
from tests.conftest import TASK_TYPES, WORKFLOWS, install_test_task_types


@dataclass
class Server:
    client: TestClient  # authenticated as the admin
    ry: Runyard

    def as_token(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@dataclass
class RunningJob:
    serial: int
    lease: str
    job_token: str
    worker_token: str

    @property
    def as_job(self) -> dict[str, str]:
        """Headers of calls made by the job's script."""
        return {"Authorization": f"Bearer {self.job_token}"}

    @property
    def as_worker(self) -> dict[str, str]:
        """Headers of calls made by the worker that holds the job."""
        return {"Authorization": f"Bearer {self.worker_token}"}


@pytest.fixture
def server(ry: Runyard) -> Iterator[Server]:
    token = ry.auth.ensure_admin_token()
    assert token is not None
    with TestClient(create_app(ry), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield Server(client=client, ry=ry)


def start_jobs(server: Server, count: int = 1) -> list[RunningJob]:
    """Import the test packages, start ``count`` runs of Linear and claim their Double jobs
    as a worker; each job is Running under its lease, with its job token."""
    client = server.client
    for folder in [*sorted(TASK_TYPES.iterdir()), WORKFLOWS / "Linear"]:
        client.post("/api/packages", content=folder_zip_bytes(folder)).raise_for_status()
    client.post("/api/workflows/Linear/start").raise_for_status()
    for value in range(count):
        client.post(
            "/api/workflows/Linear/runs", json={"task": "Source", "outputs": {"value": value}}
        ).raise_for_status()
    worker_token = client.post("/api/tokens/worker", json={"name": "w1"}).json()["token"]
    worker = server.as_token(worker_token)
    client.post(
        "/api/workers/register", json={"name": "w1", "max_jobs": count}, headers=worker
    ).raise_for_status()
    claims = client.post(
        "/api/workers/claim", json={"worker": "w1", "max": count}, headers=worker
    ).json()
    assert len(claims) == count, claims
    return [
        RunningJob(
            serial=claim["job"]["serial"],
            lease=claim["lease"]["lease"],
            job_token=claim["token"],
            worker_token=worker_token,
        )
        for claim in claims
    ]


def start_a_job(server: Server) -> RunningJob:
    return start_jobs(server, 1)[0]


def error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    result: dict[str, Any] = body["error"]
    return result


@pytest.fixture
def reduced(ry: Runyard) -> Iterator[Runyard]:
    """The started workflow 'Reduced': Source -> Double -> Table (reduce over Double)."""
    install_test_task_types(ry)
    ry.workflows.import_package(load_package(WORKFLOWS / "Reduced"))  # type: ignore[arg-type]
    ry.workflows.set_state("Reduced", "Started")
    yield ry
