"""The worker itself against the in-process server (SQLite and PostgreSQL), through a client
that can lose answers or hold requests: what it does when an answer is lost, its fork server
dies, the server hangs, or a job is dropped."""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runyard.client import Client, Unreachable, _remote_error
from runyard.packages import folder_zip_bytes
from runyard.worker.claimed import Claimed
from runyard.worker.joblog import LogPump
from runyard.worker.worker import Worker, WorkerConfig
from tests.conftest import TASK_TYPES, WORKFLOWS
from tests.integration.conftest import Server, start_a_job


class InProcessClient(Client):
    """The worker's client, calling the in-process server as its worker token. ``lose``:
    paths whose next answer is lost after the server handled the call; ``before``: called
    with each (path, body) before the call is made."""

    def __init__(self, test_client: TestClient, token: str) -> None:
        super().__init__("http://testserver", token)
        self._http.close()
        self._tc = test_client
        self._auth = {"Authorization": f"Bearer {token}"}
        self.lose: list[str] = []
        self.before: Callable[[str, Any], None] = lambda path, body: None
        self.calls: list[str] = []

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        self.before(path, json)
        self.calls.append(path)
        response = self._tc.request(
            method, path, json=json, content=content, params=params, headers=self._auth
        )
        if path in self.lose:
            self.lose.remove(path)
            raise Unreachable(f"the answer to {path} was lost")
        if response.status_code >= 400:
            raise _remote_error(response)
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.content


@dataclass
class Lab:
    server: Server
    root: Path
    token: str
    workers: list[tuple[Worker, threading.Thread]] = field(default_factory=list)

    def worker(self, name: str = "w1", **options: Any) -> tuple[Worker, InProcessClient]:
        """A burst worker (not started yet) named ``name``, with its own folder."""
        config = WorkerConfig(
            server="http://testserver",
            token=self.token,
            name=name,
            data_dir=self.root / name,
            burst=True,
            **options,
        )
        worker = Worker(config)
        client = InProcessClient(self.server.client, self.token)
        worker.client = worker.scripts.client = client
        return worker, client

    def start(self, worker: Worker) -> threading.Thread:
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        self.workers.append((worker, thread))
        return thread

    def run(self, worker: Worker) -> None:
        """Run a burst worker until nothing is left."""
        thread = self.start(worker)
        thread.join(timeout=120)
        assert not thread.is_alive(), "the burst worker did not stop"

    def new_run(self, workflow: str, value: int) -> None:
        self.server.client.post(
            f"/api/workflows/{workflow}/runs", json={"task": "Source", "outputs": {"value": value}}
        ).raise_for_status()

    def job(self, serial: int) -> dict[str, Any]:
        answer: dict[str, Any] = self.server.client.get(f"/api/jobs/{serial}").json()
        return answer

    def serials(self, workflow: str, task: str) -> list[int]:
        status = self.server.client.get(f"/api/workflows/{workflow}/status").json()
        return [run["jobs"][task]["serial"] for run in status["runs"] if task in run["jobs"]]


@pytest.fixture
def lab(server: Server, tmp_path: Path) -> Iterator[Lab]:
    client = server.client
    for folder in [*sorted(TASK_TYPES.iterdir()), WORKFLOWS / "Linear", WORKFLOWS / "Sleepy"]:
        client.post("/api/packages", content=folder_zip_bytes(folder)).raise_for_status()
    for workflow in ("Linear", "Sleepy"):
        client.post(f"/api/workflows/{workflow}/start").raise_for_status()
    token = client.post("/api/tokens/worker", json={"name": "w1"}).json()["token"]
    lab = Lab(server=server, root=tmp_path / "workers", token=token)
    yield lab
    for worker, thread in lab.workers:
        worker.stop()
        worker.stop()  # a second time: give running jobs back at once
        thread.join(timeout=60)


def job_folders(worker: Worker) -> list[Path]:
    return sorted(worker.jobs_root.glob("job-*")) if worker.jobs_root.is_dir() else []


def wait_for_pid(
    worker: Worker, serial: int, thread: threading.Thread, other_than: Collection[int] = ()
) -> int:
    """The process id of job ``serial``'s Sleep script (not one of ``other_than``), once it
    has started."""
    done = threading.Event()
    while not done.wait(0.02):
        assert thread.is_alive(), "the worker stopped before the job started"
        for folder in job_folders(worker):
            try:
                if folder.name.startswith(f"job-{serial}-"):
                    pid = int(json.loads((folder / "pid.json").read_text())["pid"])
                    if pid not in other_than:
                        return pid
            except FileNotFoundError:
                continue
    raise AssertionError("unreachable")


# -- lost answers ---------------------------------------------------------------------------


def test_a_worker_whose_report_answer_is_lost_reports_again_and_the_job_is_done(
    lab: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    lab.new_run("Linear", 1)
    worker, client = lab.worker(max_jobs=1, fast_start=False)
    client.lose.append("/api/workers/report")
    with caplog.at_level(logging.WARNING, logger="runyard.worker"):
        lab.run(worker)
    assert client.calls.count("/api/workers/report") >= 2, "reported again"
    (serial,) = lab.serials("Linear", "Double")
    job = lab.job(serial)
    assert (job["state"], job["attempt"]) == ("Done", 1)
    assert lab.server.client.get(f"/api/jobs/{serial}/log").text == "doubling 1\n"
    # The follower that the lost answer handed out waits for its lease to expire.
    assert lab.job(lab.serials("Linear", "Add")[0])["state"] == "Running"
    assert not [r for r in caplog.records if "no longer held" in r.getMessage()], caplog.text
    assert job_folders(worker) == [], "the Done jobs' folders are deleted"


# -- the fork server ------------------------------------------------------------------------


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


def test_the_jobs_of_a_fork_server_that_died_are_given_back_and_run_from_a_new_one(
    lab: Lab,
) -> None:
    lab.new_run("Sleepy", 60)
    (serial,) = lab.serials("Sleepy", "Sleep")
    worker, client = lab.worker(max_jobs=1)
    thread = lab.start(worker)
    first = wait_for_pid(worker, serial, thread)
    assert sys.executable in worker.forkservers
    dead = worker.forkservers[sys.executable].process
    assert parent(first) == dead.pid, "started from the fork server"
    dead.kill()
    second = wait_for_pid(worker, serial, thread, other_than={first})
    assert not running(first), "the first script was killed"
    new = worker.forkservers[sys.executable].process
    assert new.pid != dead.pid
    assert parent(second) == new.pid, "started from a new fork server"
    assert f"/api/jobs/{serial}/release" in client.calls, "given back, not failed"
    job = lab.job(serial)
    assert (job["state"], job["attempt"], job["error"]) == ("Running", 1, "")


# -- heartbeats -----------------------------------------------------------------------------


def test_a_heartbeat_holds_no_job_lock_while_it_waits_for_the_server(
    server: Server, tmp_path: Path
) -> None:
    job = start_a_job(server)
    worker = Worker(
        WorkerConfig(
            server="http://testserver", token=job.worker_token, name="w1", data_dir=tmp_path
        )
    )
    client = InProcessClient(server.client, job.worker_token)
    worker.client = client
    claimed = Claimed(serial=job.serial, lease=job.lease, token=job.job_token, job={}, task_type={})
    (tmp_path / "job.log").write_text("line 1\n")
    claimed.log = LogPump(tmp_path / "job.log")
    locked_during_request: list[bool] = []
    client.before = lambda path, body: locked_during_request.append(claimed.reporting.locked())
    worker._beat([claimed])
    assert locked_during_request == [False], "a finishing or released job need not wait"
    assert server.client.get(f"/api/jobs/{job.serial}/log").text == "line 1\n"


# -- working folders ------------------------------------------------------------------------


def test_the_working_folders_of_dropped_and_given_back_jobs_are_deleted(lab: Lab) -> None:
    lab.new_run("Sleepy", 60)
    lab.new_run("Sleepy", 60)
    aborted, given_back = lab.serials("Sleepy", "Sleep")
    worker, _ = lab.worker(max_jobs=2)
    thread = lab.start(worker)
    wait_for_pid(worker, aborted, thread)
    wait_for_pid(worker, given_back, thread)
    lab.server.client.post(
        f"/api/jobs/{aborted}/state", json={"state": "Aborted"}
    ).raise_for_status()
    worker.stop()
    worker.stop()  # again: give the running job back at once
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert lab.job(aborted)["state"] == "Aborted"
    assert (lab.job(given_back)["state"], lab.job(given_back)["attempt"]) == ("Queued", 0)
    assert job_folders(worker) == []


PEEK = """\
import json, os
from runyard import task

value = task.current_job().inputs["value"]
print(json.dumps(sorted(os.listdir("."))))
if value % 2:
    open("left.txt", "w").write("what the job leaves behind")
task.finish({"value": value})
"""


def test_a_job_sees_no_file_of_an_earlier_job_in_its_working_folder(
    lab: Lab, tmp_path: Path
) -> None:
    """Folders are used again by later jobs (runyard.worker.folders): only when their jobs
    left nothing of their own in them."""
    peek, flow = tmp_path / "Peek", tmp_path / "Peeking"
    for folder, name in ((peek, "metadata.json"), (peek, "interface.json"), (peek, "main.py")):
        folder.mkdir(exist_ok=True)
        source = TASK_TYPES / "Double" / name
        (folder / name).write_text(source.read_text().replace("Test.Double", "Test.Peek"))
    (peek / "main.py").write_text(PEEK)
    flow.mkdir()
    (flow / "metadata.json").write_text(
        json.dumps({"package_format": "XFP-WF1.0", "name": "Peeking", "version": "1.0.0.0"})
    )
    tasks = [
        {"name": "Source", "task_type": {"name": "Test.Source"}, "inputs": []},
        {
            "name": "Peek",
            "task_type": {"name": "Test.Peek"},
            "inputs": [{"key": "value", "source": {"mode": "output", "task": 0, "key": "value"}}],
        },
    ]
    (flow / "tasks.json").write_text(json.dumps({"tasks": tasks}))
    for folder in (peek, flow):
        lab.server.client.post("/api/packages", content=folder_zip_bytes(folder)).raise_for_status()
    lab.server.client.post("/api/workflows/Peeking/start").raise_for_status()
    for value in range(12):
        lab.new_run("Peeking", value)
    worker, _ = lab.worker(max_jobs=2)
    lab.run(worker)
    for serial in lab.serials("Peeking", "Peek"):
        assert lab.job(serial)["state"] == "Done"
        log = lab.server.client.get(f"/api/jobs/{serial}/log").text
        assert json.loads(log.splitlines()[0]) == ["job.json", "job.log"]
    assert job_folders(worker) == [], "the Done jobs' folders are deleted"
    assert sorted(p.name for p in worker.jobs_root.iterdir()) == []
