"""Acceptance: task scripts that call the server in a loop (``Test.Chatty``) while the server
is restarted, or its PostgreSQL stopped, for a few seconds. Their calls are tried again, so
they end Done (first attempt) and their followers appear; a script whose server stays away
longer than ``RUNYARD_RETRY_SECONDS`` is given back and runs again, never Failed."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import httpx

from tests.acceptance.conftest import Installation, Worker, start_worker, stop, wait_for
from tests.acceptance.test_outages import (
    OwnPostgres,
    free_port,
    own_postgres,
    start_server_at,
)
from tests.conftest import TASK_TYPES, WORKFLOWS

__all__ = ["own_postgres"]  # the fixture, used by name

RUNS = 2
SECONDS = 8  # how long each Chatty job calls the server: the outage falls inside
OUTAGE = 3.0  # seconds the server (or its database) is away


def prepare(server: Installation) -> None:
    folders = [TASK_TYPES / n for n in ("Source", "Chatty", "Double")]
    server.cli("import", *map(str, folders), str(WORKFLOWS / "ChattyChain"))
    server.api("POST", "/api/workflows/ChattyChain/start")
    for i in range(RUNS):
        server.api(
            "POST",
            "/api/workflows/ChattyChain/runs",
            {"task": "Source", "outputs": {"value": SECONDS}, "name": f"r{i}"},
        )


def chatty_jobs(server: Installation) -> list[dict[str, Any]]:
    status = server.api("GET", "/api/workflows/ChattyChain/status")
    found = [run["jobs"].get("Chatty") for run in status["runs"]]
    return [server.job(job["serial"]) for job in found if job is not None]


def all_calling(server: Installation) -> list[dict[str, Any]] | None:
    """The Chatty jobs, once each is Running and has reported progress (it is calling)."""
    jobs = chatty_jobs(server)
    calling = [j for j in jobs if j["state"] == "Running" and j["progress"] is not None]
    return jobs if len(calling) == RUNS else None


def job_log(server: Installation, serial: int) -> str:
    answer = httpx.get(
        f"{server.url}/api/jobs/{serial}/log",
        headers={"Authorization": f"Bearer {server.admin_token}"},
        timeout=30,
    )
    answer.raise_for_status()
    return answer.text


def assert_all_done_with_followers(server: Installation, first_attempt: bool) -> None:
    status = server.status("ChattyChain", "--wait")
    assert [run["name"] for run in status["runs"]] == [f"r{i}" for i in range(RUNS)]
    for run in status["runs"]:
        states = {task: job["state"] for task, job in run["jobs"].items()}
        assert states == {"Source": "Done", "Chatty": "Done", "Double": "Done"}, run
        assert run["jobs"]["Double"]["outputs"] == {"value": 2 * SECONDS}
    for job in chatty_jobs(server):
        assert job["outputs"]["seconds"] == SECONDS
        if first_attempt:
            assert job["attempt"] == 1, f"the job ran more than once: {job}"


def test_scripts_calling_the_server_through_its_restart_end_done_with_their_followers(
    tmp_path: Path, database_url: str
) -> None:
    url = None if database_url.startswith("sqlite") else database_url
    data_dir = tmp_path / "server"
    port = free_port()
    server = start_server_at(data_dir, port, url, "server-1.log")
    worker: Worker | None = None
    try:
        prepare(server)
        worker = start_worker(server, "chatty-1", tmp_path / "worker", "--max-jobs", "2")
        jobs = wait_for(lambda: all_calling(server), "Chatty jobs calling", alive=worker.process)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        time.sleep(OUTAGE)  # the outage itself: the scripts' calls are refused meanwhile
        server = start_server_at(data_dir, port, url, "server-2.log")
        assert_all_done_with_followers(server, first_attempt=True)
        for job in jobs:
            log = job_log(server, job["serial"])
            assert "trying again for up to 120 s" in log, log
            assert "the server answered again after" in log, log
        assert worker.process.poll() is None
    finally:
        if worker is not None:
            worker.kill()
        stop(server)


def test_scripts_calling_the_server_while_postgresql_is_stopped_end_done(
    tmp_path: Path, own_postgres: OwnPostgres
) -> None:
    server = start_server_at(tmp_path / "server", free_port(), own_postgres.url, "server.log")
    worker: Worker | None = None
    try:
        prepare(server)
        worker = start_worker(server, "chatty-pg", tmp_path / "worker", "--max-jobs", "2")
        jobs = wait_for(lambda: all_calling(server), "Chatty jobs calling", alive=worker.process)
        own_postgres.stop()
        time.sleep(OUTAGE)  # the outage itself: the server answers 503 meanwhile
        own_postgres.start()
        assert_all_done_with_followers(server, first_attempt=True)
        for job in jobs:
            log = job_log(server, job["serial"])
            assert "the server answered 503" in log, log
            assert "the server answered again after" in log, log
    finally:
        if worker is not None:
            worker.kill()
        stop(server)


def test_a_script_whose_server_stays_away_too_long_is_given_back_not_failed(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "server"
    port = free_port()
    server = start_server_at(data_dir, port, None, "server-1.log")
    worker: Worker | None = None
    try:
        prepare(server)
        worker = start_worker(
            server,
            "chatty-away",
            tmp_path / "worker",
            "--max-jobs",
            "2",
            env={"RUNYARD_RETRY_SECONDS": "1"},
        )
        wait_for(lambda: all_calling(server), "Chatty jobs calling", alive=worker.process)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        wait_for(
            lambda: worker.log().count("could not reach the server") >= RUNS,  # type: ignore[union-attr]
            "the worker giving both jobs back",
            alive=worker.process,
        )
        server = start_server_at(data_dir, port, None, "server-2.log")
        assert_all_done_with_followers(server, first_attempt=False)
        for job in chatty_jobs(server):
            assert job["attempt"] >= 2 and not job["error"], job
        assert "Failed" not in server.api("GET", "/api/workflows/ChattyChain/status").__repr__()
    finally:
        if worker is not None:
            worker.kill()
        stop(server)
