"""The Slurm executor without Slurm: what is asked of sbatch, how squeue's and scontrol's
answers are read, what an ended Slurm job means to the runner, and how ``SlurmJob.wait``
counts the task type's timeout (run time, not time in Slurm's queue). The real thing:
``tests/acceptance/test_slurm.py``."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from runyard.worker import runner, slurm_commands
from runyard.worker.claimed import Claimed
from runyard.worker.config import SlurmOptions
from runyard.worker.prepare import Prepared
from runyard.worker.processes import GiveBack
from runyard.worker.slurm import SlurmJob
from runyard.worker.slurm_commands import Ending, decide_ending


def prepared(tmp_path: Path, **fields: Any) -> Prepared:
    workdir = tmp_path / "work dir"
    workdir.mkdir(exist_ok=True)
    return Prepared(
        command=[sys.executable, "/opt/task types/main.py"],
        env={"RUNYARD_JOB_SERIAL": "7"},
        path=[],
        workdir=workdir,
        log=workdir / "job.log",
        forkable=True,
        **fields,
    )


@pytest.mark.parametrize(
    ("timeout", "default", "expected"),
    [
        (3, None, "2"),
        (60, "10", "2"),
        (61, None, "3"),
        (None, "1:00:00", "1:00:00"),
        (None, None, None),
    ],
)
def test_the_time_limit_is_a_minute_above_the_task_types_timeout_else_the_workers_default(
    timeout: float | None, default: str | None, expected: str | None
) -> None:
    assert slurm_commands.time_limit(timeout, default) == expected


def test_sbatch_names_the_job_after_its_serial_in_its_folder_with_its_log_and_environment(
    tmp_path: Path,
) -> None:
    job = prepared(tmp_path)
    command = slurm_commands.sbatch_command(
        job, serial=7, timeout_seconds=None, options=SlurmOptions(), comment="runyard worker w"
    )
    assert command == [
        "sbatch",
        "--parsable",
        "--job-name=runyard-7",
        f"--chdir={job.workdir}",
        f"--output={job.log}",
        "--open-mode=append",
        "--export=ALL",
        "--no-requeue",
        "--comment=runyard worker w",
    ]
    options = SlurmOptions(partition="short", cpus=4, memory="8G", time="2:00:00")
    extra = slurm_commands.sbatch_command(
        job, serial=7, timeout_seconds=90, options=options, comment="c"
    )[len(command) :]
    assert extra == ["--partition=short", "--cpus-per-task=4", "--mem=8G", "--time=3"]


def test_a_task_types_resources_ask_sbatch_over_the_workers_defaults(tmp_path: Path) -> None:
    options = SlurmOptions(partition="short", cpus=4, memory="8G")
    job = prepared(tmp_path, resources={"cpus": 16, "memory": "64G"})
    command = slurm_commands.sbatch_command(
        job, serial=7, timeout_seconds=None, options=options, comment="c"
    )
    assert command[-3:] == ["--partition=short", "--cpus-per-task=16", "--mem=64G"]
    job = prepared(tmp_path, resources={"partition": "gpu"})
    command = slurm_commands.sbatch_command(
        job, serial=7, timeout_seconds=None, options=SlurmOptions(), comment="c"
    )
    assert command[-1] == "--partition=gpu"


def test_the_batch_script_runs_the_jobs_command_in_place_of_the_shell(tmp_path: Path) -> None:
    script = slurm_commands.batch_script(prepared(tmp_path).command)
    assert script == f"#!/bin/sh\nexec {sys.executable} '/opt/task types/main.py'\n"


def test_squeue_and_scontrol_answers_are_read() -> None:
    assert slurm_commands.parse_job_id("1234\n") == "1234"
    assert slurm_commands.parse_job_id("1234;cluster\n") == "1234"
    with pytest.raises(slurm_commands.SlurmRefused):
        slurm_commands.parse_job_id("")
    assert [slurm_commands.parse_elapsed(t) for t in ("7", "0:05", "1:02:03", "2-01:00:00")] == [
        7,
        5,
        3723,
        2 * 86400 + 3600,
    ]
    assert slurm_commands.parse_squeue("12|RUNNING|0:05\n13|PENDING|0:00\nnoise\n") == {
        "12": ("RUNNING", 5),
        "13": ("PENDING", 0),
    }
    line = "JobId=12 JobName=runyard-7 JobState=FAILED Reason=NonZeroExitCode ExitCode=3:0 X=1"
    assert slurm_commands.parse_exit_code(line) == (3, 0)
    assert slurm_commands.parse_exit_code("JobState=CANCELLED ExitCode=0:15") == (0, 15)


@pytest.mark.parametrize(
    ("state", "status", "signum", "cancelled", "expected"),
    [
        ("COMPLETED", 0, 0, False, Ending(code=0)),
        ("FAILED", 3, 0, False, Ending(code=3)),
        ("FAILED", 0, 9, False, Ending(code=-9)),
        ("CANCELLED", 0, 15, True, Ending(code=-signal.SIGKILL)),
        (
            "CANCELLED",
            0,
            15,
            False,
            Ending(
                code=-15, failure="Slurm job 12 was cancelled in Slurm, not by Runyard (scancel)"
            ),
        ),
        (
            "TIMEOUT",
            0,
            0,
            False,
            Ending(
                code=-signal.SIGTERM,
                timed_out=True,
                failure="Slurm ended its job 12 at the job's time limit (TIMEOUT)",
            ),
        ),
        (
            "OUT_OF_MEMORY",
            0,
            9,
            False,
            Ending(
                code=-9,
                failure="Slurm job 12 ran out of memory (OUT_OF_MEMORY: more than its --mem)",
            ),
        ),
        (
            "NODE_FAIL",
            0,
            0,
            False,
            Ending(code=-signal.SIGKILL, give_back="Slurm job 12 ended NODE_FAIL"),
        ),
    ],
)
def test_an_ended_slurm_jobs_state_and_exit_code_decide_its_outcome(
    state: str, status: int, signum: int, cancelled: bool, expected: Ending
) -> None:
    assert decide_ending("12", state, status, signum, cancelled=cancelled) == expected


class FakeSlurm:
    """What a ``SlurmJob`` needs of ``Slurm``: to be woken when it should cancel."""

    def __init__(self, ending: tuple[Ending, str] | None = None) -> None:
        self.woken = 0
        self.ending = ending

    def wake(self) -> None:
        self.woken += 1

    def submit(self, prepared: Prepared, serial: int, timeout: float | None) -> SlurmJob:
        job = SlurmJob("12", self)  # type: ignore[arg-type]
        if self.ending is not None:
            job._end(*self.ending)
        return job


def slurm_job() -> tuple[SlurmJob, FakeSlurm]:
    fake = FakeSlurm()
    return SlurmJob("12", fake), fake  # type: ignore[arg-type]


def test_time_in_slurms_queue_does_not_count_against_the_timeout() -> None:
    job, _ = slurm_job()
    job._seen("PENDING", 0.0)
    ends = threading.Timer(0.3, job._end, (Ending(code=0), "COMPLETED"))
    ends.start()
    assert job.wait(timeout=0.1) == 0  # pending for 0.3 s: no timeout
    ends.join()


def test_a_job_that_ran_longer_than_the_timeout_times_out_and_a_cancel_is_asked_once() -> None:
    job, fake = slurm_job()
    job._seen("RUNNING", 5.0)
    with pytest.raises(subprocess.TimeoutExpired):
        job.wait(timeout=3)
    job.kill_group()
    job.kill_group()
    assert fake.woken == 1 and job.cancel_requested is not None
    job._end(decide_ending("12", "CANCELLED", 0, 15, cancelled=True), "CANCELLED")
    assert job.wait() == -signal.SIGKILL
    assert job.failure == ""


def test_slurms_timeout_is_the_task_types_timeout_or_else_a_failure_in_slurms_words() -> None:
    job, _ = slurm_job()
    job._end(decide_ending("12", "TIMEOUT", 0, 15, cancelled=False), "TIMEOUT")
    with pytest.raises(subprocess.TimeoutExpired):
        job.wait(timeout=60)
    assert job.wait() == -15
    assert "time limit" in job.failure


def test_a_job_whose_node_failed_is_given_back() -> None:
    job, _ = slurm_job()
    job._end(decide_ending("12", "NODE_FAIL", 0, 0, cancelled=False), "NODE_FAIL")
    with pytest.raises(RuntimeError, match="NODE_FAIL"):
        job.wait()


def claimed() -> Claimed:
    return Claimed(
        serial=7,
        lease="lease",
        token="ry_job_7_x",
        job={"serial": 7},
        task_type={"entry_point": "main.py", "timeout_seconds": None},
    )


def test_the_runner_fails_a_slurm_job_with_its_exit_status_or_slurms_reason(
    tmp_path: Path,
) -> None:
    failed = FakeSlurm((decide_ending("12", "FAILED", 3, 0, cancelled=False), "FAILED"))
    outcome = runner.run(claimed(), prepared(tmp_path), None, None, failed)  # type: ignore[arg-type]
    assert not outcome.ok and outcome.error.startswith("the script exited with status 3")
    oom = FakeSlurm((decide_ending("12", "OUT_OF_MEMORY", 0, 9, cancelled=False), "OUT_OF_MEMORY"))
    outcome = runner.run(claimed(), prepared(tmp_path), None, None, oom)  # type: ignore[arg-type]
    assert outcome.error.startswith("Slurm job 12 ran out of memory")
    node = FakeSlurm((decide_ending("12", "NODE_FAIL", 0, 0, cancelled=False), "NODE_FAIL"))
    with pytest.raises(GiveBack, match="NODE_FAIL"):
        runner.run(claimed(), prepared(tmp_path), None, None, node)  # type: ignore[arg-type]


def test_a_job_that_sbatch_refuses_is_failed_with_its_words_and_one_it_cannot_reach_given_back(
    tmp_path: Path,
) -> None:
    class Refusing(FakeSlurm):
        def __init__(self, error: Exception) -> None:
            super().__init__()
            self.error = error

        def submit(self, prepared: Prepared, serial: int, timeout: float | None) -> SlurmJob:
            raise self.error

    refused = Refusing(slurm_commands.SlurmRefused("Slurm refused the job: Invalid partition name"))
    outcome = runner.run(claimed(), prepared(tmp_path), None, None, refused)  # type: ignore[arg-type]
    assert not outcome.ok and outcome.error.startswith("Slurm refused the job: Invalid partition")
    away = Refusing(slurm_commands.SlurmUnavailable("Unable to contact slurm controller"))
    with pytest.raises(GiveBack, match="Unable to contact"):
        runner.run(claimed(), prepared(tmp_path), None, None, away)  # type: ignore[arg-type]
