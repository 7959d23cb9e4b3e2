"""Acceptance: ``runyard server`` with separate ``runyard worker`` processes, and what becomes
of jobs when a worker is killed, frozen or stopped, or when a script is killed.

The server runs with a short lease (``RUNYARD_LEASE_SECONDS``), so that recovery takes
seconds; a healthy worker renews its leases well within it. Workers that a test kills or
freezes are started with ``--max-jobs 1``, so that a claim they leave waiting on the server
(see ``test_the_waiting_claim_of_a_killed_worker_takes_no_job``) ends long before their
job's lease does.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import (
    Installation,
    Worker,
    start_server,
    start_worker,
    stop,
    wait_for,
)
from tests.conftest import TASK_TYPES, WORKFLOWS

LEASE_SECONDS = 3
FINISHED = ("Done", "Failed", "Aborted", "Obsolete")
# Long enough for a lease to run out, the job to be queued again and run by another worker.
RECOVERY_SECONDS = LEASE_SECONDS + 20


@dataclass
class Lab:
    """A server alone with the test packages; workflows Linear, Sleepy and Tools started."""

    server: Installation
    root: Path
    workers: list[Worker] = field(default_factory=list)

    def worker(self, name: str, *extra: str) -> Worker:
        worker = start_worker(self.server, name, self.root / name, *extra)
        self.workers.append(worker)
        return worker

    def new_run(self, workflow: str, value: int, name: str) -> None:
        self.server.api(
            "POST",
            f"/api/workflows/{workflow}/runs",
            {"task": "Source", "outputs": {"value": value}, "name": name},
        )

    def serials(self, workflow: str, task: str) -> list[int]:
        """The serials of the task's jobs, in run order."""
        status = self.server.api("GET", f"/api/workflows/{workflow}/status")
        return [run["jobs"][task]["serial"] for run in status["runs"]]

    def wait_job(
        self,
        serial: int,
        condition: Callable[[dict[str, Any]], bool],
        what: str,
        timeout: float = RECOVERY_SECONDS,
        seen: list[tuple[str, int, str | None]] | None = None,
    ) -> dict[str, Any]:
        """The job's JSON once ``condition`` holds; ``seen`` collects each (state, attempt,
        worker) that the job went through meanwhile, as far as polling caught them."""
        last: dict[str, Any] = {}

        def check() -> dict[str, Any] | None:
            now = self.server.job(serial)
            last.clear()  # the job as it is now (a Queued job's worker_missing goes)
            last.update(now)
            step = (last["state"], last["attempt"], last["worker"])
            if seen is not None and (not seen or seen[-1] != step):
                seen.append(step)
            return dict(last) if condition(last) else None

        try:
            return wait_for(check, f"job {serial} {what}", timeout=timeout, interval=0.1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the job is now {last}") from None

    def close(self) -> None:
        for worker in self.workers:
            worker.kill()
        for worker in self.workers:
            for pid in scripts(worker).values():
                if _sleep_script_alive(pid):
                    os.kill(pid, signal.SIGKILL)
        stop(self.server)


@pytest.fixture
def lab(tmp_path: Path, database_url: str) -> Iterator[Lab]:
    extra = () if database_url.startswith("sqlite") else ("--database-url", database_url)
    server = start_server(
        tmp_path / "server", *extra, env={"RUNYARD_LEASE_SECONDS": str(LEASE_SECONDS)}
    )
    lab = Lab(server=server, root=tmp_path)
    try:
        task_types = ("Source", "Double", "Add", "Sleep", "NeedsTool")
        workflows = ("Linear", "Sleepy", "Tools")
        server.cli(
            "import",
            *[str(TASK_TYPES / t) for t in task_types],
            *[str(WORKFLOWS / w) for w in workflows],
        )
        for workflow in workflows:
            server.api("POST", f"/api/workflows/{workflow}/start")
        yield lab
    finally:
        lab.close()


def scripts(worker: Worker) -> dict[int, int]:
    """{job serial: process id} of the Sleep scripts that the worker has started (read from
    the ``pid.json`` each writes into its working folder, while that folder exists)."""
    found = {}
    for folder, _, files in os.walk(worker.data_dir):
        if "pid.json" in files:
            try:
                data = json.loads((Path(folder) / "pid.json").read_text())
            except FileNotFoundError:  # the folder of a finished job, just deleted
                continue
            found[int(data["serial"])] = int(data["pid"])
    return found


def started_script(worker: Worker, serial: int) -> int:
    """The process id of job ``serial``'s Sleep script, once the worker has started it."""
    return wait_for(
        lambda: scripts(worker).get(serial),
        f"worker {worker.name} starting job {serial}",
        alive=worker.process,
    )


def _sleep_script_alive(pid: int) -> bool:
    """Whether the job script ``pid`` still runs (a job process, forked or not, runs in its
    job's working folder ``.../jobs/job-SERIAL-...``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    state = stat.rpartition(")")[2].split()[0]
    return state not in ("Z", "X") and "/jobs/job-" in cwd


def test_a_worker_with_its_own_data_directory_runs_jobs_through_the_servers_url(
    lab: Lab,
) -> None:
    worker = lab.worker("lab-pc-1")
    for i in range(3):
        lab.new_run("Linear", i, f"sample-{i}")
    status = lab.server.status("Linear", "--wait")
    for i, run in enumerate(status["runs"]):
        assert {t: j["state"] for t, j in run["jobs"].items()} == dict.fromkeys(
            ("Source", "Double", "Add"), "Done"
        )
        assert run["jobs"]["Add"]["outputs"] == {"value": 2 * i + 10}
        for task in ("Double", "Add"):
            assert lab.server.job(run["jobs"][task]["serial"])["worker"] == "lab-pc-1"
    assert any(worker.data_dir.rglob("Test.Double")), "scripts fetched into the worker's folder"
    assert not any(lab.server.data_dir.rglob("*lab-pc-1*")), "nothing of the worker's there"


def test_the_job_of_a_killed_worker_is_run_again_by_another_worker_after_its_lease(
    lab: Lab,
) -> None:
    lab.new_run("Sleepy", 1, "r")
    (serial,) = lab.serials("Sleepy", "Sleep")
    first = lab.worker("first", "--max-jobs", "1")
    first_pid = started_script(first, serial)
    first.kill()
    lab.worker("second")
    job = lab.wait_job(serial, lambda j: j["state"] in FINISHED, "finishing")
    assert (job["state"], job["attempt"], job["worker"]) == ("Done", 2, "second")
    assert job["outputs"]["pid"] != first_pid
    assert lab.server.api("GET", "/api/workflows/Sleepy/status")["idle"]


def test_the_waiting_claim_of_a_killed_worker_takes_no_job(lab: Lab) -> None:
    lab.new_run("Sleepy", 1, "busy")
    (busy,) = lab.serials("Sleepy", "Sleep")
    first = lab.worker("first", "--max-jobs", "2")
    started_script(first, busy)  # by now its claim for a second job waits on the server
    first.kill()
    lab.new_run("Sleepy", 0, "new")
    new = lab.serials("Sleepy", "Sleep")[1]
    lab.worker("second")
    seen: list[tuple[str, int, str | None]] = []
    job = lab.wait_job(new, lambda j: j["state"] in FINISHED, "finishing", seen=seen)
    assert (job["state"], job["attempt"], job["worker"]) == ("Done", 1, "second"), (
        f"(state, attempt, worker) seen: {seen}"
    )


def test_the_server_requeues_the_job_of_a_killed_worker_with_no_worker_claiming(
    lab: Lab,
) -> None:
    lab.new_run("Sleepy", 1, "r")
    (serial,) = lab.serials("Sleepy", "Sleep")
    first = lab.worker("first", "--max-jobs", "1")
    started_script(first, serial)
    first.kill()
    lab.wait_job(
        serial, lambda j: j["state"] == "Queued", "queued again", timeout=LEASE_SECONDS + 6
    )


def test_a_killed_script_fails_its_job_with_the_signal_name(lab: Lab) -> None:
    lab.new_run("Sleepy", 60, "long")
    (serial,) = lab.serials("Sleepy", "Sleep")
    worker = lab.worker("w")
    os.kill(started_script(worker, serial), signal.SIGKILL)
    job = lab.wait_job(serial, lambda j: j["state"] in FINISHED, "finishing")
    assert (job["state"], job["attempt"]) == ("Failed", 1)
    assert "SIGKILL" in job["error"]


def test_the_working_folder_of_a_failed_job_is_kept_and_shown_in_the_job(lab: Lab) -> None:
    lab.new_run("Sleepy", 60, "long")
    (serial,) = lab.serials("Sleepy", "Sleep")
    worker = lab.worker("w")
    os.kill(started_script(worker, serial), signal.SIGKILL)
    job = lab.wait_job(serial, lambda j: j["state"] in FINISHED, "finishing")
    workdir = Path(job["workdir"])
    assert workdir.is_relative_to(worker.data_dir) and str(workdir) in job["error"]
    assert (workdir / "pid.json").is_file()
    assert "sleeping 60 s" in (workdir / "job.log").read_text()


def test_aborting_a_running_job_kills_its_script_within_seconds(lab: Lab) -> None:
    lab.new_run("Sleepy", 60, "long")
    (serial,) = lab.serials("Sleepy", "Sleep")
    worker = lab.worker("w")
    pid = started_script(worker, serial)
    lab.server.api("POST", f"/api/jobs/{serial}/state", {"state": "Aborted"})
    wait_for(lambda: not _sleep_script_alive(pid), "the script to be killed", timeout=10)
    job = lab.server.job(serial)
    assert job["state"] == "Aborted"
    assert worker.process.poll() is None, "the worker goes on"


def test_obsoleting_a_run_kills_its_running_script_within_seconds_and_restore_runs_it_again(
    lab: Lab,
) -> None:
    def run_of(serial: int) -> str:
        return str(lab.server.job(serial)["run"]["id"])

    _obsoleting_kills_the_script_and_restoring_runs_it_again(
        lab,
        obsolete=lambda serial: lab.server.api("POST", f"/api/runs/{run_of(serial)}/obsolete"),
        restore=lambda serial: lab.server.cli("run", "restore", run_of(serial)),
    )


def test_obsoleting_a_workflow_kills_its_running_script_within_seconds_and_start_runs_it_again(
    lab: Lab,
) -> None:
    _obsoleting_kills_the_script_and_restoring_runs_it_again(
        lab,
        obsolete=lambda _: lab.server.api("POST", "/api/workflows/Sleepy/obsolete"),
        restore=lambda _: lab.server.cli("workflow", "start", "Sleepy"),
    )


def _obsoleting_kills_the_script_and_restoring_runs_it_again(
    lab: Lab, *, obsolete: Callable[[int], object], restore: Callable[[int], object]
) -> None:
    """``obsolete(serial)`` obsoletes what the running job belongs to (its run, its
    workflow); ``restore(serial)`` brings it back."""
    lab.new_run("Sleepy", 7, "long")  # 7 s: it outlasts the wait for the kill (5 s)
    (serial,) = lab.serials("Sleepy", "Sleep")
    worker = lab.worker("w")
    pid = started_script(worker, serial)
    obsolete(serial)
    wait_for(lambda: not _sleep_script_alive(pid), "the script to be killed", timeout=5)
    job = lab.server.job(serial)
    assert (job["state"], job["attempt"], job["worker"]) == ("Queued", 0, None)
    assert "given back" in lab.server.cli("job", "log", str(serial)).stdout
    assert worker.process.poll() is None, "the worker goes on"

    restore(serial)
    done = lab.wait_job(serial, lambda j: j["state"] in FINISHED, "finishing")
    assert (done["state"], done["attempt"], done["worker"]) == ("Done", 1, "w")
    assert done["outputs"]["pid"] != pid


def test_sigterm_lets_a_worker_finish_its_running_jobs_and_another_does_the_rest(
    lab: Lab,
) -> None:
    for i in range(4):
        lab.new_run("Sleepy", 1, f"r{i}")
    serials = lab.serials("Sleepy", "Sleep")
    first = lab.worker("first", "--max-jobs", "2")
    held = wait_for(
        lambda: set(s) if len(s := scripts(first)) == 2 else None,
        "the first worker running two jobs",
        alive=first.process,
    )
    first.signal(signal.SIGTERM)
    assert first.wait() == 0, first.log()
    for serial in serials:
        job = lab.server.job(serial)
        if serial in held:  # finished within the grace period
            assert (job["state"], job["attempt"], job["worker"]) == ("Done", 1, "first")
        else:  # never claimed after the signal
            assert (job["state"], job["attempt"]) == ("Queued", 0)
    lab.worker("second", "--max-jobs", "2")
    status = lab.server.status("Sleepy", "--wait")
    assert [r["jobs"]["Sleep"]["state"] for r in status["runs"]] == ["Done"] * 4
    for serial in serials:
        job = lab.server.job(serial)
        assert job["attempt"] == 1
        assert job["worker"] == ("first" if serial in held else "second")


def test_sigterm_after_the_grace_period_kills_and_releases_running_jobs(lab: Lab) -> None:
    lab.new_run("Sleepy", 60, "long")
    (serial,) = lab.serials("Sleepy", "Sleep")
    first = lab.worker("first", "--grace", "1")
    pid = started_script(first, serial)
    first.signal(signal.SIGTERM)
    assert first.wait(timeout=15) == 0, first.log()
    job = lab.server.job(serial)
    assert (job["state"], job["attempt"]) == ("Queued", 0), "released, the attempt not counted"
    assert not _sleep_script_alive(pid)


def test_a_frozen_worker_whose_lease_expired_cannot_overwrite_the_newer_attempt(
    lab: Lab,
) -> None:
    lab.new_run("Sleepy", 1, "r")
    (serial,) = lab.serials("Sleepy", "Sleep")
    first = lab.worker("first", "--max-jobs", "1", "--provides", "Tool.A")
    first_pid = started_script(first, serial)
    first.signal(signal.SIGSTOP)
    # Meanwhile its script ends; the lease runs out and the second worker runs the job again.
    lab.worker("second", "--max-jobs", "1")
    done = lab.wait_job(serial, lambda j: j["state"] in FINISHED, "finishing")
    assert (done["state"], done["attempt"], done["worker"]) == ("Done", 2, "second")
    assert done["outputs"]["pid"] != first_pid

    first.signal(signal.SIGCONT)
    # A job that only the first worker can run: once it has run it, the first worker has
    # dealt with its own attempt (reported it, and been refused, or dropped it).
    lab.new_run("Tools", 1, "after")
    (tool,) = lab.serials("Tools", "Tool")
    after = lab.wait_job(tool, lambda j: j["state"] in FINISHED, "finishing")
    assert (after["state"], after["worker"]) == ("Done", "first"), first.log()
    assert lab.server.job(serial) == done


def test_workers_get_only_the_jobs_whose_dependencies_they_provide(lab: Lab) -> None:
    plain = lab.worker("plain", "--provides", "Tool.B")
    for i in range(3):
        lab.new_run("Tools", i, f"r{i}")
    plain_serials, tool_serials = lab.serials("Tools", "Plain"), lab.serials("Tools", "Tool")
    for serial in plain_serials:
        lab.wait_job(serial, lambda j: j["state"] in FINISHED, "finishing")
    # The plain worker went on claiming all along, and left the jobs that need Tool.A.
    assert plain.process.poll() is None, plain.log()
    for serial in tool_serials:
        job = lab.server.job(serial)
        assert (job["state"], job["worker"]) == ("Queued", None)

    lab.worker("tooled", "--provides", "Tool.A")
    status = lab.server.status("Tools", "--wait")
    for run in status["runs"]:
        assert {t: j["state"] for t, j in run["jobs"].items()} == dict.fromkeys(
            ("Source", "Plain", "Tool"), "Done"
        )
    assert [lab.server.job(s)["worker"] for s in plain_serials] == ["plain"] * 3
    assert [lab.server.job(s)["worker"] for s in tool_serials] == ["tooled"] * 3


def test_a_healthy_worker_keeps_a_job_that_runs_longer_than_the_lease(lab: Lab) -> None:
    lab.new_run("Sleepy", LEASE_SECONDS + 3, "long")
    (serial,) = lab.serials("Sleepy", "Sleep")
    lab.worker("w")
    seen: list[tuple[str, int, str | None]] = []
    job = lab.wait_job(
        serial,
        lambda j: j["state"] in FINISHED or j["attempt"] > 1,
        "finishing or retried",
        seen=seen,
    )
    assert (job["state"], job["attempt"], job["worker"]) == ("Done", 1, "w"), (
        f"(state, attempt, worker) seen: {seen}"
    )
