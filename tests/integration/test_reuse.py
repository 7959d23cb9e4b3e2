"""Reused processes (``jobs_per_process`` > 1): the jobs of a task type run one after another
in a child forked from the fork server, each with what a new process would give it (its own
folder, environment, arguments, log, ``runyard.task`` job), at most N per child; a failed,
timed out, aborted, thread-leaving or exiting job retires its child."""

from __future__ import annotations

import itertools
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runyard.worker import heartbeat, runner
from runyard.worker.claimed import Claimed
from runyard.worker.forkserver import ForkServer
from runyard.worker.joblog import LogPump
from runyard.worker.prepare import COMPAT_DIR, RUNYARD_SOURCE, Prepared, job_environment
from runyard.worker.reuse import ReusePool
from runyard.worker.runner import Outcome

SCRIPT = """\
import json, os, sys, threading, time
from runyard import task
import helper  # beside the script: imported once per process

job = task.current_job()
helper.jobs.append(job.serial)
print(json.dumps({
    "pid": os.getpid(), "serial": job.serial, "variable": os.environ["RUNYARD_JOB_SERIAL"],
    "cwd": os.getcwd(), "argv": sys.argv, "path0": sys.path[0],
    "left_by_earlier_job": os.environ.get("LEFT_BY"), "jobs_here": helper.jobs,
}), flush=True)
os.environ["LEFT_BY"] = str(job.serial)
mode = job.inputs["mode"]
if mode == "raise":
    raise ValueError("bad threshold")
if mode == "sleep":
    time.sleep(60)
if mode == "exit":
    os._exit(0)
if mode == "thread":
    threading.Thread(target=lambda: (time.sleep(0.2), print("thread done", flush=True))).start()
task.finish({"pid": os.getpid()})
"""

serials = itertools.count(1)


@pytest.fixture(scope="module")
def forkserver() -> Iterator[ForkServer]:
    server = ForkServer(COMPAT_DIR)
    yield server
    server.close()


@pytest.fixture
def children() -> Iterator[ReusePool]:
    pool = ReusePool(max_idle=2)
    yield pool
    pool.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "script"
    folder.mkdir()
    (folder / "main.py").write_text(SCRIPT)
    (folder / "helper.py").write_text("jobs = []\n")
    return folder


def job(
    folder: Path, mode: str = "ok", *, jobs_per_process: int = 3, timeout: float | None = None
) -> tuple[Claimed, Prepared]:
    serial = next(serials)
    workdir = folder.parent / f"job-{serial}"
    workdir.mkdir()
    data = {"serial": serial, "inputs": {"mode": mode}}
    claimed = Claimed(
        serial=serial,
        lease="lease",
        token=f"ry_job_{serial}_x",
        job=data,
        task_type={"entry_point": "main.py", "timeout_seconds": timeout, "dependencies": []},
    )
    (workdir / "job.json").write_text(json.dumps(data))
    path = [str(folder), COMPAT_DIR, RUNYARD_SOURCE]
    env = dict(os.environ) | job_environment(claimed, "http://127.0.0.1:9", workdir)
    prepared = Prepared(
        command=[sys.executable, str(folder / "main.py")],
        env=env,
        path=path,
        workdir=workdir,
        log=workdir / "job.log",
        forkable=True,
        task_type="Test.Reuse 1.0.0.0",
        jobs_per_process=jobs_per_process,
    )
    claimed.log = LogPump(prepared.log)
    return claimed, prepared


def seen(prepared: Prepared) -> dict[str, Any]:
    """What the script printed first about itself."""
    first: dict[str, Any] = json.loads(prepared.log.read_text().splitlines()[0])
    return first


def run(
    forkserver: ForkServer, children: ReusePool, claimed: Claimed, prepared: Prepared
) -> Outcome:
    return runner.run(claimed, prepared, forkserver, children)


def test_a_reused_process_gives_each_job_its_own_folder_environment_arguments_and_log(
    forkserver: ForkServer, children: ReusePool, folder: Path
) -> None:
    jobs = [job(folder) for _ in range(3)]
    for claimed, prepared in jobs:
        assert run(forkserver, children, claimed, prepared).ok

    pids = {seen(prepared)["pid"] for _, prepared in jobs}
    assert len(pids) == 1, "one process ran the three jobs"
    for index, (claimed, prepared) in enumerate(jobs):
        me = seen(prepared)
        assert me["serial"] == claimed.serial and me["variable"] == str(claimed.serial)
        assert me["cwd"] == str(prepared.workdir)
        assert me["argv"] == [str(folder / "main.py")]
        assert me["path0"] == str(folder)
        # The process's environment is the job's: what an earlier job set is gone ...
        assert me["left_by_earlier_job"] is None
        # ... but the modules it imported are shared.
        assert me["jobs_here"] == [c.serial for c, _ in jobs[: index + 1]]
        assert len(prepared.log.read_text().splitlines()) == 1, "its own output only"


def test_a_reused_process_serves_at_most_jobs_per_process_jobs(
    forkserver: ForkServer, children: ReusePool, folder: Path
) -> None:
    jobs = [job(folder, jobs_per_process=2) for _ in range(5)]
    for claimed, prepared in jobs:
        assert run(forkserver, children, claimed, prepared).ok

    a, b, c, d, e = (seen(prepared)["pid"] for _, prepared in jobs)
    assert a == b != c == d != e and len({a, c, e}) == 3


def test_a_failed_job_fails_with_its_traceback_and_the_next_job_gets_a_new_process(
    forkserver: ForkServer, children: ReusePool, folder: Path
) -> None:
    first, failing, after = job(folder), job(folder, "raise"), job(folder)
    assert run(forkserver, children, *first).ok
    outcome = run(forkserver, children, *failing)
    assert run(forkserver, children, *after).ok

    assert outcome.error.startswith("the script exited with status 1")
    assert "ValueError: bad threshold" in outcome.error
    assert "Traceback" in failing[1].log.read_text()
    pids = [seen(prepared)["pid"] for _, prepared in (first, failing, after)]
    assert pids[0] == pids[1] != pids[2], "the failed job's process served no more jobs"


def test_the_timeout_kills_the_reused_process_and_the_next_job_gets_a_new_one(
    forkserver: ForkServer, children: ReusePool, folder: Path
) -> None:
    slow, after = job(folder, "sleep", timeout=0.5), job(folder)
    outcome = run(forkserver, children, *slow)
    assert run(forkserver, children, *after).ok

    assert outcome.error.startswith("timed out after 0.5 s")
    assert seen(slow[1])["pid"] != seen(after[1])["pid"]
    assert not _running(seen(slow[1])["pid"])


def test_an_aborted_job_kills_the_reused_process_and_the_next_job_gets_a_new_one(
    forkserver: ForkServer, children: ReusePool, folder: Path
) -> None:
    """The server refused the lease (aborted): the heartbeat kills the script's group."""
    aborted, after = job(folder, "sleep"), job(folder)
    claimed, prepared = aborted

    def abort_once_started() -> None:
        while not prepared.log.exists() or not prepared.log.read_text():
            time.sleep(0.01)
        with claimed.reporting:
            heartbeat.lost(claimed)

    threading.Thread(target=abort_once_started, daemon=True).start()
    outcome = run(forkserver, children, *aborted)
    assert run(forkserver, children, *after).ok

    assert outcome.error.startswith("killed by signal SIGKILL")
    assert claimed.process is None, "once it ended, a late abort kills nothing"
    assert seen(prepared)["pid"] != seen(after[1])["pid"]


def test_a_job_that_leaves_a_thread_is_waited_for_and_its_process_serves_no_more(
    forkserver: ForkServer, children: ReusePool, folder: Path
) -> None:
    threaded, after = job(folder, "thread"), job(folder)
    assert run(forkserver, children, *threaded).ok
    assert run(forkserver, children, *after).ok

    assert threaded[1].log.read_text().endswith("thread done\n"), "waited for, as at exit"
    assert seen(threaded[1])["pid"] != seen(after[1])["pid"]


def test_a_job_that_ends_its_process_itself_is_done_and_the_next_job_gets_a_new_one(
    forkserver: ForkServer, children: ReusePool, folder: Path
) -> None:
    exiting, after = job(folder, "exit"), job(folder)
    assert run(forkserver, children, *exiting).ok, "os._exit(0): status 0, as on its own"
    assert run(forkserver, children, *after).ok

    assert seen(exiting[1])["pid"] != seen(after[1])["pid"]


def _running(pid: int) -> bool:
    deadline = time.monotonic() + 5  # the signal is delivered asynchronously
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except FileNotFoundError:
            return False
        if state in ("Z", "X"):
            return False
        time.sleep(0.01)
    return True
