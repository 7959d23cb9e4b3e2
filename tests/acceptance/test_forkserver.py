"""Acceptance: the fork server of a real ``runyard worker`` dies under its jobs (killed, out of
memory). Not the scripts' fault: the worker gives the jobs back (Queued, the attempt not
counted), starts a new fork server, and the jobs run again from it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.acceptance.conftest import wait_for
from tests.acceptance.test_worker import (  # noqa: F401 (lab: the fixture)
    FINISHED,
    Lab,
    _sleep_script_alive,
    lab,
    scripts,
)

SECONDS = 8  # each script's sleep: it outlasts pausing the runs and killing the fork server


def parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


def test_the_jobs_of_a_killed_fork_server_go_back_to_queued_and_then_complete(
    lab: Lab,  # noqa: F811 (the fixture of test_worker)
) -> None:
    for i in range(2):
        lab.new_run("Sleepy", SECONDS, f"r{i}")
    serials = lab.serials("Sleepy", "Sleep")
    runs = [str(lab.server.job(serial)["run"]["id"]) for serial in serials]
    worker = lab.worker("w", "--max-jobs", "2")
    first = wait_for(
        lambda: dict(s) if len(s := scripts(worker)) == 2 else None,
        "the worker running both jobs",
        alive=worker.process,
    )
    (forkserver,) = {parent(pid) for pid in first.values()}
    assert parent(forkserver) == worker.process.pid, "the scripts come from its fork server"
    # Paused runs keep their given-back jobs Queued (a running job goes on) until resumed.
    for run in runs:
        lab.server.api("PUT", f"/api/runs/{run}/priority", {"priority": "paused"})

    os.kill(forkserver, signal.SIGKILL)
    for serial in serials:
        job = lab.wait_job(serial, lambda j: j["state"] != "Running", "given back")
        assert (job["state"], job["attempt"], job["worker"], job["error"]) == (
            "Queued",
            0,
            None,
            "",
        ), "given back, not failed, the attempt not counted"
    wait_for(
        lambda: not any(_sleep_script_alive(pid) for pid in first.values()),
        "the scripts killed with their fork server",
    )
    assert worker.process.poll() is None, worker.log()
    assert "fork server stopped while the job ran; giving it back" in worker.log()

    for run in runs:
        lab.server.api("PUT", f"/api/runs/{run}/priority", {"priority": "normal"})
    again = wait_for(
        lambda: (
            dict(s) if len(s := scripts(worker)) == 2 and not s.items() & first.items() else None
        ),
        "the worker running both jobs again",
        alive=worker.process,
    )
    (new_forkserver,) = {parent(pid) for pid in again.values()}
    assert new_forkserver != forkserver and parent(new_forkserver) == worker.process.pid
    for serial in serials:
        done = lab.wait_job(serial, lambda j: j["state"] in FINISHED, "finishing")
        assert (done["state"], done["attempt"], done["worker"]) == ("Done", 1, "w")
        assert done["outputs"]["pid"] == again[serial] != first[serial]
