"""Acceptance: several ``runyard server`` processes on one PostgreSQL database and one data
directory (issue 16): server A is ``runyard server --processes 2``, server B a second
``runyard server`` on another port, as a lab's servers on two machines would be. Real
workers talk to A or to B.

- A claim waiting on one server is woken by a run created on the other, long before its
  long poll's end (the notification crosses processes through PostgreSQL; that it is the
  notification, and not the claim's own half-second look at the database, is proven in
  ``tests/integration/test_notifications.py``, where that look can be turned off).
- Those runs are then done by worker B alone; a fan-out started through B by worker A alone
  (its Spawn job spawns through A), and a reduce task added through A sums it; a second
  fan-out started through A, with both workers at work, replaces the reduce job. Every job
  is Done exactly once (one live job per run and task, each run by one worker in one
  attempt), the old reduce job is Obsolete, the new one sums every run.
- B's live runs table (its event stream) shows a run created through A.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.acceptance.conftest import RUNYARD, clean_env, wait_for
from tests.acceptance.test_outages import free_port
from tests.conftest import TASK_TYPES, WORKFLOWS

LONG_POLL = 60.0  # the longest wait a claim may ask for
FIRST, SECOND = 8, 12  # runs spawned by the first and the second fan-out


@dataclass
class Served:
    """A ``runyard server`` process and how to call its API as the admin."""

    name: str
    url: str
    process: subprocess.Popen[str]
    log_path: Path
    token: str = ""

    def api(self, method: str, path: str, body: Any = None, **extra: Any) -> Any:
        response = httpx.request(
            method,
            self.url + path,
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=extra.pop("timeout", 30),
            **extra,
        )
        if response.status_code >= 400:
            raise AssertionError(
                f"server {self.name}: {method} {path}: {response.status_code} {response.text}"
            )
        return response.json()

    def runyard(self, *args: str) -> str:
        """The ``runyard`` CLI against this server."""
        result = subprocess.run(
            [*RUNYARD, *args, "--server", self.url, "--token", self.token],
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"runyard {args}: {result.stdout}\n{result.stderr}"
        return result.stdout

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def serve(name: str, data_dir: Path, database_url: str, *extra: str) -> Served:
    port = free_port()
    log_path = data_dir.parent / f"server-{name}.log"
    command = [*RUNYARD, "server", "--data-dir", str(data_dir), "--database-url", database_url]
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [*command, "--port", str(port), *extra],
            env=clean_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    served = Served(name=name, url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)

    def answers() -> bool:
        try:
            return httpx.get(served.url + "/api/workflows", timeout=5).status_code == 401
        except httpx.TransportError:
            return False

    try:
        wait_for(answers, f"server {name} answering", timeout=60, alive=process)
    except AssertionError as exc:
        raise AssertionError(f"{exc}:\n{log_path.read_text()}") from None
    served.token = (data_dir / "admin-token").read_text().strip()
    return served


def start_worker(server: Served, name: str, data_dir: Path) -> subprocess.Popen[str]:
    token = server.api("POST", "/api/tokens/worker", {"name": name})["token"]
    data_dir.mkdir(parents=True)
    with open(data_dir / "worker.log", "w") as log:
        return subprocess.Popen(
            [*RUNYARD, "worker", "--server", server.url, "--token", token, "--name", name],
            env=clean_env({"RUNYARD_DATA_DIR": str(data_dir)}) | {"PYTHONUNBUFFERED": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )


@dataclass
class Lab:
    a: Served
    b: Served
    database_url: str
    root: Path
    workers: list[subprocess.Popen[str]]

    def start_worker(self, server: Served, name: str, folder: str) -> subprocess.Popen[str]:
        worker = start_worker(server, name, self.root / folder)
        self.workers.append(worker)
        return worker

    def stop(self, worker: subprocess.Popen[str]) -> None:
        """Stop a worker (it has no job running: it stops at once)."""
        worker.terminate()
        assert worker.wait(timeout=30) == 0


@pytest.fixture
def lab(tmp_path: Path, postgres_url: str) -> Iterator[Lab]:
    data_dir = tmp_path / "lab"  # shared by both servers: the file store, task type scripts
    a = serve("A", data_dir, postgres_url, "--processes", "2")
    b: Served | None = None
    found = Lab(a=a, b=a, database_url=postgres_url, root=tmp_path, workers=[])
    try:
        b = found.b = serve("B", data_dir, postgres_url)
        yield found
    finally:
        for worker in found.workers:
            worker.terminate()
        for worker in found.workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        for server in (b, a):
            if server is not None:
                server.stop()


def claim_woken_by_a_run_elsewhere(
    waiting_on: Served, created_on: Served, value: int
) -> Callable[[], None]:
    """A claim on ``waiting_on`` for a worker that has nothing to do; a run of Linear made
    through ``created_on`` gets its Double job claimed long before the long poll ends.
    Returned: what gives the job back (Queued again, the attempt not counted)."""
    probe = f"probe-{waiting_on.name}"
    waiting_on.api("POST", "/api/workers/register", {"name": probe, "max_jobs": 1})
    answers: list[tuple[float, Any]] = []

    def claim() -> None:
        started = time.monotonic()
        claimed = waiting_on.api(
            "POST",
            "/api/workers/claim",
            {"worker": probe, "max": 1, "wait": LONG_POLL},
            timeout=LONG_POLL + 30,
        )
        answers.append((time.monotonic() - started, claimed))

    thread = threading.Thread(target=claim)
    thread.start()
    # Let the claim start waiting. Were it not yet waiting, it would find the job at its
    # first look: the test would pass without a wake-up, never fail because of this pause.
    time.sleep(1.0)
    created_on.api(
        "POST", "/api/workflows/Linear/runs", {"task": "Source", "outputs": {"value": value}}
    )
    thread.join(LONG_POLL + 40)
    [(seconds, claimed)] = answers
    assert len(claimed) == 1, f"the claim on {waiting_on.name} got nothing in {seconds:.1f} s"
    assert claimed[0]["job"]["inputs"] == {"value": value}
    assert seconds < LONG_POLL / 2, f"woken by the run, not by the long poll's end: {seconds} s"
    serial, lease = claimed[0]["job"]["serial"], claimed[0]["lease"]["lease"]
    return lambda: waiting_on.api("POST", f"/api/jobs/{serial}/release", {"lease": lease})


def status(server: Served, workflow: str) -> dict[str, Any]:
    found: dict[str, Any] = server.api("GET", f"/api/workflows/{workflow}/status")
    return found


def reduced(server: Served, count: int) -> Callable[[], dict[str, Any] | None]:
    """A condition: the live Table job of Spawner is Done over ``count`` runs (its output)."""

    def done() -> dict[str, Any] | None:
        table: dict[str, Any] | None = status(server, "Spawner")["reduce"].get("Table")
        assert table is None or table["state"] != "Failed", f"the reduce failed: {table}"
        if table is not None and table["state"] == "Done" and table["outputs"]["count"] == count:
            return table
        return None

    return done


def next_event(lines: Iterator[str]) -> dict[str, Any]:
    """The data of the next event of a Server-Sent Events stream (comments skipped)."""
    kind = None
    for line in lines:
        if line.startswith("event:"):
            kind = line.removeprefix("event:").strip()
        elif line.startswith("data:") and kind == "changed":
            data: dict[str, Any] = json.loads(line.removeprefix("data:"))
            return data
    raise AssertionError("the event stream ended")


def rows(database_url: str) -> list[dict[str, Any]]:
    """Every job of the lab, Obsolete ones too, with its workflow, run, task and worker."""
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            found = conn.execute(
                sa.text(
                    "SELECT w.name AS workflow, r.name AS run, r.id AS run_id, t.name AS task, "
                    "j.state, j.attempt, k.name AS worker, j.outputs FROM jobs j "
                    "JOIN runs r ON r.id = j.run_id JOIN tasks t ON t.id = j.task_id "
                    "JOIN workflows w ON w.id = j.workflow_id "
                    "LEFT JOIN workers k ON k.id = j.worker_id ORDER BY j.serial"
                )
            ).all()
    finally:
        engine.dispose()
    return [dict(row._mapping) for row in found]


def test_several_servers_on_one_database_run_every_job_once_and_wake_each_other(
    lab: Lab,
) -> None:
    a, b = lab.a, lab.b
    a.runyard(
        "import",
        *(str(TASK_TYPES / name) for name in ("Source", "Double", "Add", "XfSpawn", "Table")),
        str(WORKFLOWS / "Linear"),
        str(WORKFLOWS / "Spawner"),
    )
    b.api("POST", "/api/workflows/Linear/start")
    a.api("POST", "/api/workflows/Spawner/start")

    give_back = [
        claim_woken_by_a_run_elsewhere(waiting_on=a, created_on=b, value=1),
        claim_woken_by_a_run_elsewhere(waiting_on=b, created_on=a, value=2),
    ]
    for release in give_back:
        release()

    # Worker B alone (talking to server B) runs the probes' two runs of Linear.
    worker_b = lab.start_worker(b, "worker-b", "worker-b")

    def linear_done() -> bool:
        runs: list[dict[str, Any]] = status(a, "Linear")["runs"]
        return len(runs) == 2 and all(
            run["jobs"].get(task, {}).get("state") == "Done"
            for run in runs
            for task in ("Double", "Add")
        )

    wait_for(linear_done, "the probes' runs of Linear", timeout=120, alive=worker_b)
    lab.stop(worker_b)

    # Worker A alone (talking to server A) runs the first fan-out, started through B: the
    # Spawn job spawns FIRST runs through server A, each with a Found job Done and a Twice
    # job Queued.
    worker_a = lab.start_worker(a, "worker-a", "worker-a")
    b.api(
        "POST",
        "/api/workflows/Spawner/runs",
        {"task": "Source", "outputs": {"value": FIRST}, "name": "first"},
    )

    def twice_done(count: int) -> bool:
        runs: list[dict[str, Any]] = status(a, "Spawner")["runs"]
        return sum(bool(r["jobs"].get("Twice", {}).get("state") == "Done") for r in runs) == count

    wait_for(lambda: twice_done(FIRST), "the first fan-out's steps", timeout=180, alive=worker_a)
    a.api(
        "POST",
        "/api/workflows/Spawner/tasks",
        {
            "name": "Table",
            "task_type": {"name": "Test.Table"},
            "inputs": [
                {"key": "values", "source": {"mode": "output", "task": "Twice", "key": "value"}},
                {"key": "title", "source": {"mode": "fixed", "fixed_value": "twice"}},
            ],
        },
    )
    first = wait_for(reduced(b, FIRST), "the reduce over the first fan-out", timeout=180)
    assert first["outputs"]["total"] == sum(2 * (i + 1) for i in range(FIRST))
    first_runs = {run["id"] for run in status(b, "Spawner")["runs"]}

    # Both workers, each on its server, for the second fan-out, started through A.
    worker_b = lab.start_worker(b, "worker-b", "worker-b-again")

    def registrations(name: str) -> int:
        entries = a.api("GET", "/api/activity", params={"limit": 500})
        return sum(e["message"].startswith(f"worker {name} registered") for e in entries)

    wait_for(lambda: registrations("worker-b") == 2, "worker B again", alive=worker_b)

    # B's live runs table, while the second fan-out is started through A.
    with httpx.stream(
        "GET",
        b.url + "/api/workflows/Spawner/events",
        headers={"Authorization": f"Bearer {b.token}"},
        timeout=60,
    ) as stream:
        lines = stream.iter_lines()
        before = next_event(lines)
        a.api(
            "POST",
            "/api/workflows/Spawner/runs",
            {"task": "Source", "outputs": {"value": SECOND}, "name": "second"},
        )
        after = next_event(lines)
    assert after["runs"] > before["runs"], (before, after)

    final = wait_for(reduced(a, FIRST + SECOND), "the reduce replaced", timeout=180)
    total = sum(2 * (i + 1) for i in range(FIRST)) + sum(2 * (i + 1) for i in range(SECOND))
    assert final["outputs"]["total"] == total

    jobs = rows(lab.database_url)
    live = [j for j in jobs if j["state"] != "Obsolete"]
    assert {j["state"] for j in live} == {"Done"}, [j for j in live if j["state"] != "Done"]
    per_run_and_task = [(j["run_id"], j["task"]) for j in live]
    assert len(per_run_and_task) == len(set(per_run_and_task)), "one live job per run and task"
    ran = [j for j in live if j["worker"] is not None]
    assert all(j["attempt"] == 1 for j in ran), [j for j in ran if j["attempt"] != 1]
    assert {j["worker"] for j in ran} == {"worker-a", "worker-b"}
    assert {j["worker"] for j in ran if j["workflow"] == "Linear"} == {"worker-b"}
    first_fanout = [j for j in ran if j["run_id"] in first_runs]
    assert {j["worker"] for j in first_fanout} == {"worker-a"} and len(first_fanout) == FIRST + 1
    counts = {
        task: sum(j["task"] == task for j in live) for task in ("Twice", "Spawn", "Double", "Add")
    }
    assert counts == {"Twice": FIRST + SECOND, "Spawn": 2, "Double": 2, "Add": 2}, counts
    twice = [j for j in live if j["task"] == "Twice"]
    assert sorted(j["outputs"]["value"] for j in twice) == sorted(
        [2 * (i + 1) for i in range(FIRST)] + [2 * (i + 1) for i in range(SECOND)]
    )
    tables = [j for j in jobs if j["task"] == "Table"]
    assert [j["state"] for j in tables].count("Done") == 1, tables
    assert {j["state"] for j in tables} == {"Done", "Obsolete"}, "the first sum was replaced"
    assert {j["state"] for j in jobs if j["task"] != "Table"} == {"Done"}, "nothing else obsolete"
