"""Acceptance: a task type with ``jobs_per_process`` 3 (``Test.Reuse``) on a real
``runyard server`` and ``runyard worker --max-jobs 1 --burst``: its jobs run in reused
processes, at most 3 each, every job with its own serial, input and working folder; a job that
fails or times out in a reused process is Failed as in a process of its own, and the next job
runs in a new one.

SQLite only: the reused processes are the worker's, the server's database plays no part."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.conftest import Installation, start_server, start_worker, stop
from tests.conftest import TASK_TYPES, WORKFLOWS

WORKFLOW = "Reusing"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    server = start_server(tmp_path_factory.mktemp("reuse") / "server")
    try:
        server.cli(
            "import",
            *[str(TASK_TYPES / t) for t in ("Source", "Reuse")],
            str(WORKFLOWS / WORKFLOW),
        )
        server.api("POST", f"/api/workflows/{WORKFLOW}/start")
        yield server
    finally:
        stop(server)


def run_jobs(server: Installation, root: Path, values: list[int]) -> list[dict[str, Any]]:
    """Runs with these source values, their Reuse jobs run to the end by a burst worker with
    one slot (in run order); the jobs' JSON, in the same order."""
    names = [f"{root.name}-{i}" for i in range(len(values))]
    for name, value in zip(names, values, strict=True):
        server.api(
            "POST",
            f"/api/workflows/{WORKFLOW}/runs",
            {"task": "Source", "outputs": {"value": value}, "name": name},
        )
    worker = start_worker(server, root.name, root, "--max-jobs", "1", "--burst")
    assert worker.wait(timeout=60) == 0, worker.log()
    status = server.api("GET", f"/api/workflows/{WORKFLOW}/status")
    serials = {run["name"]: run["jobs"]["Reuse"]["serial"] for run in status["runs"]}
    return [server.job(serials[name]) for name in names]


def log_of(server: Installation, serial: int) -> str:
    response = httpx.get(
        f"{server.url}/api/jobs/{serial}/log",
        headers={"Authorization": f"Bearer {server.admin_token}"},
        timeout=30,
    )
    response.raise_for_status()
    return response.text


def pid_in(text: str) -> int:
    found = re.search(r"pid (\d+) serial", text)
    assert found, text
    return int(found.group(1))


def test_jobs_run_in_reused_processes_at_most_3_each_with_their_own_serial_input_and_folder(
    server: Installation, tmp_path: Path
) -> None:
    (task_type,) = server.api("GET", "/api/task-types/Test.Reuse")
    assert task_type["jobs_per_process"] == 3

    jobs = run_jobs(server, tmp_path / "five", [1, 2, 3, 4, 5])

    assert [j["state"] for j in jobs] == ["Done"] * 5, [j["error"] for j in jobs]
    pids = Counter(j["outputs"]["pid"] for j in jobs)
    assert sorted(pids.values()) == [2, 3], f"3 jobs in one process, 2 in the next: {pids}"
    for value, job in enumerate(jobs, start=1):
        serial = job["serial"]
        assert job["outputs"]["serial"] == serial
        assert job["outputs"]["value"] == value
        assert f"/jobs/job-{serial}-" in job["outputs"]["cwd"]
        assert log_of(server, serial).splitlines() == [
            f"pid {job['outputs']['pid']} serial {serial} value {value} cwd {job['outputs']['cwd']}"
        ], "its own output, nothing of the other jobs"


def test_a_failed_or_timed_out_job_is_failed_and_the_next_job_runs_in_a_new_process(
    server: Installation, tmp_path: Path
) -> None:
    first, failing, second, sleeping, third = run_jobs(
        server, tmp_path / "failing", [1, -1, 2, 1000, 3]
    )

    assert [j["state"] for j in (first, second, third)] == ["Done"] * 3
    assert failing["state"] == "Failed"
    assert failing["error"].startswith("the script exited with status 1")
    assert "ValueError: negative value -1" in failing["error"]
    assert "Traceback" in log_of(server, failing["serial"])
    assert sleeping["state"] == "Failed"
    assert sleeping["error"].startswith("timed out after 2.0 s")
    # The failing job ran in the first job's process, which then served no more.
    assert pid_in(failing["error"]) == first["outputs"]["pid"] != second["outputs"]["pid"]
    assert pid_in(sleeping["error"]) == second["outputs"]["pid"] != third["outputs"]["pid"]
