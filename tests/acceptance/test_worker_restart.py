"""Acceptance: a worker killed with its job running and started again under its name gets
that job back at once: it does not wait out the job's lease (here far longer than the test
may take)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.acceptance.conftest import start_server
from tests.acceptance.test_worker import FINISHED, Lab, started_script
from tests.conftest import TASK_TYPES, WORKFLOWS

LEASE_SECONDS = 600  # nothing in this test may wait for a lease to run out


@pytest.fixture
def lab(tmp_path: Path, database_url: str) -> Iterator[Lab]:
    extra = () if database_url.startswith("sqlite") else ("--database-url", database_url)
    server = start_server(
        tmp_path / "server", *extra, env={"RUNYARD_LEASE_SECONDS": str(LEASE_SECONDS)}
    )
    lab = Lab(server=server, root=tmp_path)
    try:
        server.cli("import", str(TASK_TYPES / "Source"), str(TASK_TYPES / "Sleep"),
                   str(WORKFLOWS / "Sleepy"))  # fmt: skip
        server.api("POST", "/api/workflows/Sleepy/start")
        yield lab
    finally:
        lab.close()


def test_a_worker_started_again_under_its_name_runs_its_lost_job_again_at_once(
    lab: Lab,
) -> None:
    lab.new_run("Sleepy", 3, "r")  # 3 s: it outlasts the wait for the kill
    (serial,) = lab.serials("Sleepy", "Sleep")
    first = lab.worker("pc-1", "--max-jobs", "1")
    first_pid = started_script(first, serial)
    first.kill()
    assert lab.server.job(serial)["state"] == "Running", "its lease holds it still"
    again = lab.worker("pc-1", "--max-jobs", "1")
    # Well within the lease: only the registration can have given the job back.
    job = lab.wait_job(serial, lambda j: j["state"] in FINISHED, "finishing", timeout=120)
    assert (job["state"], job["worker"]) == ("Done", "pc-1")
    assert job["attempt"] == 2, "the lost attempt counts, as an expired lease's would"
    assert job["outputs"]["pid"] != first_pid
    assert again.process.poll() is None
    log = httpx.get(
        f"{lab.server.url}/api/jobs/{serial}/log",
        headers={"Authorization": f"Bearer {lab.server.admin_token}"},
    ).text
    assert "worker pc-1 started again" in log
