"""Acceptance: the server killed (``kill -9``) and its PostgreSQL stopped, while a real worker
runs jobs. In the end every run's jobs are Done exactly once (one job per run and task, none
lost, none run twice into a second job), with the right outputs, and nothing the server had
acknowledged is lost.

The workflow is SleepyChain (Source -> Sleep -> Nap, each sleeping the source's value in
seconds), so that jobs are running on the worker when the outage starts, their results are
reported while the server cannot record them, and followers are created only afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.acceptance.conftest import (
    RUNYARD,
    Installation,
    Worker,
    _start,
    start_worker,
    stop,
    wait_for,
)
from tests.conftest import TASK_TYPES, WORKFLOWS

# Long enough that the worker's leases outlive the outages below (its results are then
# accepted, not refused as stale), short enough that a claim whose answer the kill lost
# comes back within the test.
LEASE_SECONDS = 10
RUNS = 6
TASKS = ("Source", "Sleep", "Nap")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server_at(
    data_dir: Path, port: int, database_url: str | None, log_name: str
) -> Installation:
    """``runyard server`` on a fixed port (a restarted server must be where the worker
    looks), on ``database_url`` (None: SQLite in the data directory)."""
    (data_dir / "server.json").unlink(missing_ok=True)  # what a killed server leaves
    extra = ["--database-url", database_url] if database_url else []
    command = [*RUNYARD, "server", "--data-dir", str(data_dir), "--port", str(port), *extra]
    return _start(data_dir, command, log_name, {"RUNYARD_LEASE_SECONDS": str(LEASE_SECONDS)})


def prepare(server: Installation) -> None:
    server.cli(
        "import",
        str(TASK_TYPES / "Source"),
        str(TASK_TYPES / "Sleep"),
        str(WORKFLOWS / "SleepyChain"),
    )
    server.api("POST", "/api/workflows/SleepyChain/start")
    for i in range(RUNS):
        server.api(
            "POST",
            "/api/workflows/SleepyChain/runs",
            {"task": "Source", "outputs": {"value": 1}, "name": f"r{i}"},
        )


def jobs(server: Installation) -> dict[int, dict[str, Any]]:
    """{serial: job JSON} of the live jobs of SleepyChain, through the API."""
    status = server.api("GET", "/api/workflows/SleepyChain/status")
    return {
        job["serial"]: server.job(job["serial"])
        for run in status["runs"]
        for job in run["jobs"].values()
    }


def some_done_and_some_running(server: Installation) -> dict[int, dict[str, Any]] | None:
    """The jobs, once a Sleep or Nap job is Done (reported, acknowledged) and another is
    Running on the worker."""
    found = jobs(server)
    states = [j["state"] for j in found.values() if j["task"] != "Source"]
    return found if "Done" in states and "Running" in states else None


def rows(database_url: str) -> list[tuple[str, str, str, Any]]:
    """(run, task, state, outputs) of every job of SleepyChain in the database, Obsolete
    ones too."""
    url = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                sa.text(
                    "SELECT r.name, t.name, j.state, j.outputs FROM jobs j "
                    "JOIN runs r ON r.id = j.run_id JOIN tasks t ON t.id = j.task_id "
                    "JOIN workflows w ON w.id = t.workflow_id WHERE w.name = 'SleepyChain' "
                    "ORDER BY j.serial"
                )
            ).all()
    finally:
        engine.dispose()
    return [(r, t, s, o if isinstance(o, dict) else json.loads(o)) for r, t, s, o in found]


def assert_every_job_done_once(
    server: Installation, database_url: str, acknowledged: dict[int, dict[str, Any]]
) -> None:
    status = server.status("SleepyChain", "--wait")
    assert [run["name"] for run in status["runs"]] == [f"r{i}" for i in range(RUNS)]
    found = rows(database_url)
    per_job = [(run, task) for run, task, _, _ in found]
    assert sorted(per_job) == sorted((f"r{i}", t) for i in range(RUNS) for t in TASKS), (
        f"one job per run and task, none lost, none duplicated: {found}"
    )
    for run, task, state, outputs in found:
        assert state == "Done", (run, task, state)
        if task == "Source":
            assert outputs == {"value": 1}, (run, task, outputs)
        else:
            assert outputs["seconds"] == 1 and set(outputs) == {"seconds", "pid"}, (run, task)
    for serial, before in acknowledged.items():
        after = server.job(serial)
        assert (after["state"], after["outputs"], after["attempt"]) == (
            before["state"],
            before["outputs"],
            before["attempt"],
        ), f"job {serial} was acknowledged as {before} and is now {after}"


def acknowledged_done(found: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {serial: job for serial, job in found.items() if job["state"] == "Done"}


def test_a_server_killed_mid_job_and_restarted_loses_and_duplicates_nothing(
    tmp_path: Path, database_url: str
) -> None:
    sqlite = database_url.startswith("sqlite")
    data_dir = tmp_path / "server"
    port = free_port()
    server = start_server_at(data_dir, port, None if sqlite else database_url, "server-1.log")
    worker: Worker | None = None
    try:
        prepare(server)
        worker = start_worker(server, "crash-1", tmp_path / "worker", "--max-jobs", "3")
        before = wait_for(
            lambda: some_done_and_some_running(server),
            "a job done and another running",
            alive=worker.process,
        )
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        # The running scripts finish meanwhile: their results cannot be delivered.
        wait_for(
            lambda: "reporting again" in worker.log(),  # type: ignore[union-attr]
            "the worker trying again to report to the killed server",
            alive=worker.process,
        )
        server = start_server_at(data_dir, port, None if sqlite else database_url, "server-2.log")
        db = f"sqlite:///{data_dir / 'runyard.db'}" if sqlite else database_url
        assert_every_job_done_once(server, db, acknowledged_done(before))
        assert worker.process.poll() is None, "the worker went on through the outage"
    finally:
        if worker is not None:
            worker.kill()
        stop(server)


# -- PostgreSQL stopped under a running server -----------------------------------------------


def _pg_bin() -> Path | None:
    for initdb in sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True):
        return initdb.parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@dataclass
class OwnPostgres:
    """A PostgreSQL cluster of this test alone (the suite's shared one must stay up):
    listening on a socket in its own folder only."""

    bin: Path
    folder: Path
    port: int = 5432

    @property
    def url(self) -> str:
        return f"postgresql://postgres@/postgres?host={self.folder}&port={self.port}"

    def pg_ctl(self, *args: str) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), *args)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses='' -c fsync=off"
        self.pg_ctl("-l", str(self.folder / "log"), "-w", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-m", mode, "-w", "stop")

    def _run(self, *command: str) -> None:
        as_owner = {"user": "postgres"} if os.getuid() == 0 else {}
        subprocess.run(command, check=True, capture_output=True, timeout=60, **as_owner)


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    bin = _pg_bin()
    if bin is None:
        pytest.skip("PostgreSQL's binaries (initdb, pg_ctl) are not installed")
    folder = Path(tempfile.mkdtemp(prefix="runyard-pgoutage-", dir="/tmp"))
    folder.chmod(0o755)
    if os.getuid() == 0:
        shutil.chown(folder, "postgres")
    postgres = OwnPostgres(bin=bin, folder=folder)
    try:
        postgres._run(
            str(bin / "initdb"), "-D", str(folder / "data"), "-U", "postgres",
            "--auth=trust", "-E", "UTF8",
        )  # fmt: skip
        postgres.start()
        yield postgres
    finally:
        try:
            postgres.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # stopped already
        shutil.rmtree(folder, ignore_errors=True)


def test_the_server_answers_503_while_postgresql_is_away_and_recovers_without_a_restart(
    tmp_path: Path, own_postgres: OwnPostgres
) -> None:
    data_dir = tmp_path / "server"
    server = start_server_at(data_dir, free_port(), own_postgres.url, "server.log")
    pid = server.process.pid
    worker: Worker | None = None
    try:
        prepare(server)
        worker = start_worker(server, "pg-1", tmp_path / "worker", "--max-jobs", "3")
        before = wait_for(
            lambda: some_done_and_some_running(server),
            "a job done and another running",
            alive=worker.process,
        )
        own_postgres.stop()
        answers: list[httpx.Response] = []

        def unavailable() -> httpx.Response | None:
            answer = httpx.get(
                server.url + "/api/workflows/SleepyChain/status",
                headers={"Authorization": f"Bearer {server.admin_token}"},
                timeout=30,
            )
            answers.append(answer)
            return answer if answer.status_code == 503 else None

        answer = wait_for(unavailable, "503 while the database is away", alive=server.process)
        assert answer.json()["error"]["code"] == "database_unavailable"
        assert "database" in answer.json()["error"]["message"]
        assert set(answer.json()["error"]) == {"code", "message", "details"}
        # The worker's heartbeats and reports meet the outage too, and keep trying.
        wait_for(
            lambda: "cannot reach its database" in worker.log(),  # type: ignore[union-attr]
            "the worker told that the database is away",
            alive=worker.process,
        )
        assert {a.status_code for a in answers} <= {200, 503}, [a.text for a in answers]
        own_postgres.start()
        wait_for(
            lambda: unavailable() is None and answers[-1].status_code == 200,
            "the server answering again",
            alive=server.process,
        )
        assert_every_job_done_once(server, own_postgres.url, acknowledged_done(before))
        assert server.process.poll() is None and server.process.pid == pid, "not restarted"
        assert {a.status_code for a in answers} <= {200, 503}, [a.text for a in answers]
    finally:
        if worker is not None:
            worker.kill()
        stop(server)
