"""A script whose calls to the server were given up (the server away longer than
``RUNYARD_RETRY_SECONDS``) and that then fails is given back, not Failed; the log says what
happened. Here the server's address refuses every connection (port 9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runyard.worker import runner
from runyard.worker.forkserver import ForkServer
from runyard.worker.processes import GiveBack
from tests.integration.test_runner import forkserver, job, start_with

__all__ = ["forkserver", "start_with"]  # the fixtures, used by name

CALLS_THE_SERVER = (
    "from runyard import task\njob = task.current_job()\nprint('working', flush=True)\n{call}\n"
)


def test_a_script_failing_after_its_call_was_given_up_is_given_back(
    tmp_path: Path, start_with: ForkServer | None
) -> None:
    claimed, prepared = job(tmp_path, CALLS_THE_SERVER.format(call="job.progress(0.5)"))
    prepared.env["RUNYARD_RETRY_SECONDS"] = "0.5"
    with pytest.raises(GiveBack) as given_back:
        runner.run(claimed, prepared, start_with)
    assert "could not reach the server" in str(given_back.value)
    assert "POST /api/jobs/7/progress: gave up after" in str(given_back.value)
    assert claimed.log is not None
    log = claimed.log.read(final=True)
    assert "trying again for up to 0.5 s" in log
    assert "the job goes back to the queue" in log
    assert "ServerAway" in log  # the traceback of the uncaught error


def test_a_script_that_catches_the_error_and_fails_is_failed(
    tmp_path: Path, start_with: ForkServer | None
) -> None:
    call = (
        "from runyard.client import Unreachable\n"
        "try:\n"
        "    job.progress(0.5)\n"
        "except Unreachable as exc:\n"
        "    task.fail('no server: ' + exc.message)\n"
    )
    claimed, prepared = job(tmp_path, CALLS_THE_SERVER.format(call=call))
    prepared.env["RUNYARD_RETRY_SECONDS"] = "0.2"
    outcome = runner.run(claimed, prepared, start_with)
    assert not outcome.ok and outcome.error.startswith("no server: POST /api/jobs/7/progress")


def test_with_no_retry_time_a_failed_call_fails_the_job_at_once(
    tmp_path: Path, start_with: ForkServer | None
) -> None:
    """``RUNYARD_RETRY_SECONDS=0``: no retries, and no give back."""
    claimed, prepared = job(tmp_path, CALLS_THE_SERVER.format(call="job.progress(0.5)"))
    prepared.env["RUNYARD_RETRY_SECONDS"] = "0"
    outcome = runner.run(claimed, prepared, start_with)
    assert not outcome.ok and "exited with status 1" in outcome.error
