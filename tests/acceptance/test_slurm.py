"""Acceptance: ``runyard worker --executor slurm`` on a real, single-node Slurm cluster
(Debian's slurm-wlm: slurmctld, slurmd and munge, started by ``scripts/slurm.sh``, which
``scripts/test`` sources). Each job's script runs as a Slurm batch job ``runyard-SERIAL``:

- jobs are Done with their outputs, and ran in Slurm (``SLURM_JOB_ID`` in the script's
  environment; ``scontrol`` knows the job as ``runyard-SERIAL``, COMPLETED);
- a script that exits with status 3 fails its job with that status (Slurm: FAILED, 3:0);
- a job over its task type's timeout is cancelled by the worker (``scancel``: Slurm says
  CANCELLED) and Failed with the text of a local timeout;
- a job that Slurm keeps pending keeps its lease (longer than the lease time), and runs once
  Slurm lets it;
- aborting a job on the server cancels its Slurm job (``squeue`` lists it no more); so does a
  worker giving its jobs back on SIGTERM, and a worker started again after ``kill -9``
  cancels the Slurm jobs that its earlier run left;
- with ``--slurm-array``, jobs claimed together run as the tasks of one job array, each Done
  or Failed on its own with its output in its job log; aborting one cancels its task only.

Needs Slurm's commands and ``SLURM_CONF`` of a running cluster (``RUNYARD_TEST_SLURM=1``, set
by ``scripts/slurm.sh``); skipped without them, except under ``scripts/test``
(``RUNYARD_TEST_REQUIRE_SLURM=1``), where a missing cluster fails the tests. SQLite only: the
executor is the worker's; the database plays no part."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.conftest import (
    Installation,
    Worker,
    start_server,
    start_worker,
    stop,
    wait_for,
)
from tests.conftest import TASK_TYPES

LEASE_SECONDS = 3
TIMEOUT_SECONDS = 3


def _require_slurm() -> None:
    if os.environ.get("RUNYARD_TEST_SLURM"):
        return
    if os.environ.get("RUNYARD_TEST_REQUIRE_SLURM"):
        pytest.fail("RUNYARD_TEST_SLURM is not set but the Slurm tests are required")
    pytest.skip("no Slurm cluster: run the suite with scripts/test (or source scripts/slurm.sh)")


PROBE = '''\
"""Outputs what it saw of Slurm; value < 0 exits with status -value, >= 1000 sleeps 10 min."""
import os, sys, time
from runyard import task

job = task.current_job()
value = job.inputs["value"]
print(f"serial {job.serial} in Slurm job {os.environ.get('SLURM_JOB_ID')}", flush=True)
if value < 0:
    sys.exit(-value)
if value >= 1000:
    time.sleep(600)
array = os.environ.get("SLURM_ARRAY_JOB_ID")
task.finish({
    "value": value * 2,
    "slurm_array": f"{array}_{os.environ['SLURM_ARRAY_TASK_ID']}" if array else "",
    "slurm_job_id": os.environ.get("SLURM_JOB_ID", ""),
    "slurm_job_name": os.environ.get("SLURM_JOB_NAME", ""),
    "cwd": os.getcwd(),
})
'''


def write_packages(root: Path) -> list[Path]:
    """Two task types (Test.SlurmProbe with a timeout and resources, Test.SlurmSleep
    without) and a workflow of each after Test.Source."""
    packages = [TASK_TYPES / "Source"]
    for name, timeout, outputs in (
        ("Test.SlurmProbe", TIMEOUT_SECONDS, ["value:Int", "slurm_array:String",
                                              "slurm_job_id:String", "slurm_job_name:String",
                                              "cwd:String"]),
        ("Test.SlurmSleep", None, ["value:Int"]),
    ):  # fmt: skip
        folder = root / name
        folder.mkdir(parents=True)
        metadata: dict[str, Any] = {
            "package_format": "XFP-TT1.0",
            "name": name,
            "version": "1.0.0.0",
            "display_name": name,
            "summary": "Runs as a Slurm job in the tests.",
            "author": "Runyard tests",
            "dependencies": [],
        }
        if timeout is not None:
            metadata["timeout_seconds"] = timeout
            # No partition: a test gives the worker's (--slurm-partition) to its jobs.
            metadata["resources"] = {"cpus": 1, "memory": "64M"}
        (folder / "metadata.json").write_text(json.dumps(metadata))
        interface = {
            "kind": "processing",
            "inputs": [{"key": "value", "type": "Int", "supported_modes": ["output"]}],
            "outputs": [
                {"key": key, "type": kind} for key, kind in (o.split(":") for o in outputs)
            ],
        }
        (folder / "interface.json").write_text(json.dumps(interface))
        (folder / "main.py").write_text(PROBE)
        packages.append(folder)
        workflow = root / name.removeprefix("Test.")
        workflow.mkdir()
        (workflow / "metadata.json").write_text(
            json.dumps(
                {
                    "package_format": "XFP-WF1.0",
                    "name": workflow.name,
                    "version": "1.0.0.0",
                    "display_name": workflow.name,
                    "summary": f"Source -> {name}",
                    "author": "Runyard tests",
                }
            )
        )
        task = {
            "name": "Step",
            "task_type": {"name": name},
            "inputs": [{"key": "value", "source": {"mode": "output", "task": 0, "key": "value"}}],
        }
        (workflow / "tasks.json").write_text(
            json.dumps({"tasks": [{"name": "Source", "task_type": {"name": "Test.Source"}}, task]})
        )
        packages.append(workflow)
    return packages


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    _require_slurm()
    root = tmp_path_factory.mktemp("slurm")
    server = start_server(root / "server", env={"RUNYARD_LEASE_SECONDS": str(LEASE_SECONDS)})
    try:
        server.cli("import", *[str(p) for p in write_packages(root / "packages")])
        for workflow in ("SlurmProbe", "SlurmSleep"):
            server.api("POST", f"/api/workflows/{workflow}/start")
        yield server
    finally:
        stop(server)


def new_run(server: Installation, workflow: str, name: str, value: int) -> int:
    """A new run of ``workflow``; the serial of its Step job."""
    server.api(
        "POST",
        f"/api/workflows/{workflow}/runs",
        {"task": "Source", "outputs": {"value": value}, "name": name},
    )
    status = server.api("GET", f"/api/workflows/{workflow}/status")
    serial: int = next(r for r in status["runs"] if r["name"] == name)["jobs"]["Step"]["serial"]
    return serial


def slurm_worker(server: Installation, root: Path, *extra: str) -> Worker:
    return start_worker(server, root.name, root, "--executor", "slurm", *extra)


def scontrol(job_id: str) -> dict[str, str]:
    """``scontrol show job``'s fields of a Slurm job ({} once Slurm forgot it)."""
    done = subprocess.run(
        ["scontrol", "--oneliner", "show", "job", job_id], capture_output=True, text=True
    )
    return dict(re.findall(r"(\w[\w/:]*)=(\S*)", done.stdout)) if done.returncode == 0 else {}


def slurm_job_of(server: Installation, worker: Worker, serial: int) -> str | None:
    """The id of the newest Slurm job ``runyard-SERIAL`` of ``worker`` (its comment names the
    worker and the server: serials repeat from one test server to the next)."""
    done = subprocess.run(
        ["squeue", "--noheader", "--states=all", f"--name=runyard-{serial}", "--format=%i|%k"],
        capture_output=True,
        text=True,
    )
    comment = f"runyard worker {worker.name} of {server.url}"
    ids = [
        i for i, _, c in (line.partition("|") for line in done.stdout.splitlines()) if c == comment
    ]
    return max(ids, key=int) if ids else None


def queued_in_slurm(job_id: str) -> bool:
    """Whether ``squeue`` (pending, running, completing jobs) still lists the job."""
    done = subprocess.run(
        ["squeue", "--noheader", f"--jobs={job_id}", "--format=%i"], capture_output=True, text=True
    )
    return job_id in done.stdout.split()


def job_log(server: Installation, serial: int) -> str:
    response = httpx.get(
        f"{server.url}/api/jobs/{serial}/log",
        headers={"Authorization": f"Bearer {server.admin_token}"},
        timeout=30,
    )
    response.raise_for_status()
    return response.text


def test_jobs_run_as_slurm_jobs_and_are_done_with_their_outputs(
    server: Installation, tmp_path: Path
) -> None:
    serials = [new_run(server, "SlurmProbe", f"done-{v}", v) for v in (1, 2, 3)]
    worker = slurm_worker(server, tmp_path / "done", "--max-jobs", "3", "--burst")
    assert worker.wait(timeout=120) == 0, worker.log()
    for value, serial in zip((1, 2, 3), serials, strict=True):
        job = server.job(serial)
        assert job["state"] == "Done", (job, worker.log())
        outputs = job["outputs"]
        assert outputs["value"] == value * 2
        assert outputs["slurm_job_name"] == f"runyard-{serial}"
        assert outputs["slurm_job_id"].isdigit() and outputs["slurm_array"] == "", outputs
        assert "/jobs/job-" in outputs["cwd"] and str(tmp_path / "done") in outputs["cwd"]
        fields = scontrol(outputs["slurm_job_id"])
        assert fields["JobName"] == f"runyard-{serial}"
        assert fields["JobState"] == "COMPLETED" and fields["ExitCode"] == "0:0", fields
        assert fields["WorkDir"] == outputs["cwd"]
        # The task type's resources, as sbatch was asked for them.
        assert (fields["NumCPUs"], fields["MinMemoryNode"]) == ("1", "64M"), fields
        assert f"serial {serial} in Slurm job {outputs['slurm_job_id']}" in job_log(server, serial)
    assert "Slurm job" in worker.log()


def test_a_failing_script_fails_its_job_with_its_exit_status(
    server: Installation, tmp_path: Path
) -> None:
    serial = new_run(server, "SlurmProbe", "fails", -3)
    worker = slurm_worker(server, tmp_path / "fails", "--max-jobs", "1", "--burst")
    assert worker.wait(timeout=120) == 0, worker.log()
    job = server.job(serial)
    assert job["state"] == "Failed", job
    assert "the script exited with status 3" in job["error"], job["error"]
    fields = scontrol(str(slurm_job_of(server, worker, serial)))
    assert fields["JobState"] == "FAILED" and fields["ExitCode"] == "3:0", fields


def test_a_job_over_its_task_types_timeout_is_cancelled_and_failed_as_timed_out(
    server: Installation, tmp_path: Path
) -> None:
    serial = new_run(server, "SlurmProbe", "slow", 1000)
    worker = slurm_worker(server, tmp_path / "slow", "--max-jobs", "1", "--burst")
    assert worker.wait(timeout=120) == 0, worker.log()
    job = server.job(serial)
    assert job["state"] == "Failed", job
    assert (
        f"timed out after {float(TIMEOUT_SECONDS)} s (the task type's timeout); "
        "the script was killed" in job["error"]
    ), job["error"]
    job_id = str(slurm_job_of(server, worker, serial))
    fields = scontrol(job_id)
    assert fields["JobState"] == "CANCELLED", fields  # by the worker (scancel), at 3 s
    assert fields["TimeLimit"] == "00:02:00", "Slurm's own limit: a minute above the timeout"
    assert not queued_in_slurm(job_id)


def test_a_job_that_slurm_keeps_pending_keeps_its_lease_and_runs_once_slurm_lets_it(
    server: Installation, tmp_path: Path
) -> None:
    # A partition of its own, down: its jobs stay pending (Reason=PartitionDown) until it is up.
    partition = f"runyard-{os.getpid()}"
    node = subprocess.run(["hostname", "-s"], capture_output=True, text=True).stdout.strip()
    subprocess.run(
        ["scontrol", "create", f"PartitionName={partition}", f"Nodes={node}", "State=DOWN"],
        check=True,
    )
    serial = new_run(server, "SlurmProbe", "held", 5)
    worker = slurm_worker(
        server, tmp_path / "held", "--max-jobs", "1", "--burst", "--slurm-partition", partition
    )
    try:
        job_id = wait_for(
            lambda: slurm_job_of(server, worker, serial), "the Slurm job submitted", timeout=60
        )
        assert scontrol(job_id)["JobState"] == "PENDING"
        # Pending for three leases: the worker's heartbeats keep the job's lease alive.
        with pytest.raises(AssertionError):
            wait_for(
                lambda: (
                    server.job(serial)["state"] != "Running" or worker.process.poll() is not None
                ),
                "the job leaving Running",
                timeout=3 * LEASE_SECONDS,
                interval=0.5,
            )
        fields = scontrol(job_id)
        assert fields["JobState"] == "PENDING" and fields["Partition"] == partition, fields
        subprocess.run(["scontrol", "update", f"PartitionName={partition}", "State=UP"], check=True)
        assert worker.wait(timeout=120) == 0, worker.log()
    finally:
        worker.kill()  # if it has not ended (the test failed)
        subprocess.run(["scontrol", "delete", f"PartitionName={partition}"], check=False)
    job = server.job(serial)
    assert job["state"] == "Done" and job["outputs"]["slurm_job_id"] == job_id, job
    assert job["attempt"] == 1, "the lease was never lost"


def test_aborting_a_job_cancels_its_slurm_job(server: Installation, tmp_path: Path) -> None:
    serial = new_run(server, "SlurmSleep", "aborted", 1000)
    worker = slurm_worker(server, tmp_path / "abort", "--max-jobs", "1")
    try:
        job_id = wait_for(
            lambda: slurm_job_of(server, worker, serial), "the Slurm job submitted", timeout=60
        )
        wait_for(lambda: scontrol(job_id).get("JobState") == "RUNNING", "the Slurm job running")
        server.cli("job", "abort", str(serial))
        wait_for(lambda: not queued_in_slurm(job_id), "the Slurm job cancelled", timeout=30)
        assert scontrol(job_id)["JobState"] == "CANCELLED"
        assert server.job(serial)["state"] == "Aborted"
    finally:
        worker.signal(signal.SIGTERM)
        worker.wait(timeout=60)


def test_a_worker_giving_its_jobs_back_or_started_again_cancels_their_slurm_jobs(
    server: Installation, tmp_path: Path
) -> None:
    serial = new_run(server, "SlurmSleep", "given-back", 1000)
    worker = slurm_worker(server, tmp_path / "back", "--max-jobs", "1", "--grace", "0")
    job_id = wait_for(
        lambda: slurm_job_of(server, worker, serial), "the Slurm job submitted", timeout=60
    )
    worker.signal(signal.SIGTERM)  # no grace: the running job is given back at once
    assert worker.wait(timeout=60) == 0, worker.log()
    assert not queued_in_slurm(job_id), "cancelled before the worker exited"
    assert scontrol(job_id)["JobState"] == "CANCELLED"
    assert server.job(serial)["state"] == "Queued"

    # kill -9: the Slurm job goes on without its worker; the same worker started again
    # cancels it (the server runs the job again, its lease gone).
    def resubmitted() -> str | None:
        found = slurm_job_of(server, worker, serial)
        return found if found != job_id else None

    worker = slurm_worker(server, tmp_path / "back", "--max-jobs", "1", "--grace", "0")
    try:
        second = wait_for(resubmitted, "the job submitted again", timeout=60)
        worker.kill()
        assert queued_in_slurm(second)
        worker = slurm_worker(server, tmp_path / "back", "--max-jobs", "1", "--grace", "0")
        wait_for(lambda: not queued_in_slurm(second), "the left Slurm job cancelled", timeout=60)
        assert "earlier run left" in worker.log()
    finally:
        worker.signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, worker.log()
        server.cli("job", "abort", str(serial))  # not left queued for the next test's worker


def test_jobs_claimed_together_run_as_the_tasks_of_one_job_array(
    server: Installation, tmp_path: Path
) -> None:
    values = (1, 2, 3, -3)
    serials = [new_run(server, "SlurmProbe", f"array-{v}", v) for v in values]
    worker = slurm_worker(
        server,
        tmp_path / "array",
        *("--max-jobs", "4", "--burst", "--slurm-array", "4", "--slurm-array-wait", "60"),
    )
    assert worker.wait(timeout=120) == 0, worker.log()
    done = [server.job(serial) for serial in serials[:3]]
    arrays = {job["outputs"]["slurm_array"].partition("_")[0] for job in done}
    assert len(arrays) == 1 and arrays != {""}, done  # one array: one sbatch for the four
    (array,) = arrays
    tasks = set()
    for value, serial, job in zip(values, serials, done, strict=False):
        outputs = job["outputs"]
        assert job["state"] == "Done" and outputs["value"] == value * 2, job
        assert outputs["slurm_job_name"] == f"runyard-{min(serials)}-{max(serials)}"
        assert "/jobs/job-" in outputs["cwd"], "each task in its job's working folder"
        tasks.add(outputs["slurm_array"])
        fields = scontrol(outputs["slurm_array"])
        assert fields["JobState"] == "COMPLETED" and fields["ExitCode"] == "0:0", fields
        assert f"serial {serial} in Slurm job {outputs['slurm_job_id']}" in job_log(server, serial)
    failed = server.job(serials[3])
    assert failed["state"] == "Failed", failed
    assert "the script exited with status 3" in failed["error"], failed["error"]
    (task,) = {f"{array}_{i}" for i in range(4)} - tasks
    fields = scontrol(task)
    assert fields["JobState"] == "FAILED" and fields["ExitCode"] == "3:0", fields
    assert f"serial {serials[3]} in Slurm job" in job_log(server, serials[3])
    assert f"Slurm job array {array}" in worker.log()
    folders = tmp_path / "array" / "workers" / "array" / "slurm-arrays"
    assert list(folders.iterdir()) == [], "an array's folder goes once its tasks have ended"


def test_aborting_a_job_cancels_its_task_of_the_job_array_only(
    server: Installation, tmp_path: Path
) -> None:
    serials = [new_run(server, "SlurmSleep", f"array-abort-{i}", 1000) for i in (1, 2)]
    worker = slurm_worker(
        server,
        tmp_path / "array-abort",
        *("--max-jobs", "2", "--grace", "0", "--slurm-array", "2", "--slurm-array-wait", "60"),
    )
    try:
        array = wait_for(lambda: array_of(worker), "the job array submitted", timeout=60)
        tasks = [f"{array}_0", f"{array}_1"]
        wait_for(
            lambda: all(scontrol(t).get("JobState") == "RUNNING" for t in tasks),
            "both tasks running",
            timeout=60,
        )
        # Which task runs the first job: the Slurm job id its script printed to its log.
        printed = wait_for(
            lambda: re.search(
                rf"serial {serials[0]} in Slurm job (\d+)", job_log(server, serials[0])
            ),
            "the first job's script started",
            timeout=30,
            interval=0.5,
        )
        first = next(t for t in tasks if scontrol(t)["JobId"] == printed[1])
        other = next(t for t in tasks if t != first)
        server.cli("job", "abort", str(serials[0]))
        wait_for(lambda: not queued_in_slurm(first), "its task cancelled", timeout=30)
        assert scontrol(first)["JobState"] == "CANCELLED"
        assert server.job(serials[0])["state"] == "Aborted"
        assert scontrol(other)["JobState"] == "RUNNING", "the other task runs on"
        assert server.job(serials[1])["state"] == "Running"
    finally:
        worker.signal(signal.SIGTERM)  # no grace: the other job is given back, its task cancelled
        assert worker.wait(timeout=60) == 0, worker.log()
    assert scontrol(other)["JobState"] == "CANCELLED"
    assert server.job(serials[1])["state"] == "Queued"
    server.cli("job", "abort", str(serials[1]))  # not left queued for the next test's worker


def array_of(worker: Worker) -> str | None:
    """The id of the job array the worker's log names (None before it submitted one)."""
    match = re.search(r"Slurm job array (\d+)", worker.log())
    return match[1] if match else None
