"""The Slurm executor without Slurm: what is asked of sbatch, how squeue's and scontrol's
answers are read, what an ended Slurm job means to the runner, and how ``SlurmJob.wait``
counts the task type's timeout (run time, not time in Slurm's queue). The real thing:
``tests/acceptance/test_slurm.py``."""

from __future__ import annotations

import os
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
from runyard.worker.slurm import Slurm, SlurmJob
from runyard.worker.slurm_commands import Ending, decide_ending


def prepared(tmp_path: Path, **fields: Any) -> Prepared:
    workdir = tmp_path / "work dir"
    workdir.mkdir(parents=True, exist_ok=True)
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


# -- job arrays (--slurm-array) -------------------------------------------------------------


def test_a_job_array_runs_each_task_from_its_own_script_with_its_output_in_its_folder(
    tmp_path: Path,
) -> None:
    command = slurm_commands.array_command([7, 8, 9], tmp_path, ["--mem=1G"], "runyard worker w")
    assert command == [
        "sbatch",
        "--parsable",
        "--array=0-2",
        "--job-name=runyard-7-9",
        f"--chdir={tmp_path}",
        f"--output={tmp_path}/%a.log",
        "--open-mode=append",
        "--export=ALL",
        "--no-requeue",
        "--comment=runyard worker w",
        "--mem=1G",
    ]
    folder = tmp_path / "the array folder"
    assert slurm_commands.array_script(folder) == (
        f"#!/bin/sh\nexec /bin/sh '{folder}'/\"$SLURM_ARRAY_TASK_ID.sh\"\n"
    )


def test_an_array_task_sets_only_its_own_variables_then_runs_its_command_in_its_folder(
    tmp_path: Path,
) -> None:
    jobs = [
        prepared(tmp_path, serial=7),
        prepared(tmp_path, serial=8),
    ]
    jobs[0].env.update({"PATH": "/bin", "RUNYARD_JOB_TOKEN": "ry_job_7 'x'", "BASH_FUNC_f%%": "()"})
    jobs[1].env.update({"PATH": "/bin", "RUNYARD_JOB_SERIAL": "8", "RUNYARD_JOB_TOKEN": "t8"})
    common = slurm_commands.common_env([job.env for job in jobs])
    assert common == {"PATH": "/bin"}
    script = slurm_commands.array_task_script(jobs[0], common)
    assert script.splitlines() == [
        "#!/bin/sh",
        "export RUNYARD_JOB_SERIAL=7",
        "export RUNYARD_JOB_TOKEN='ry_job_7 '\"'\"'x'\"'\"''",
        f"cd '{jobs[0].workdir}' || exit 1",
        f"exec {sys.executable} '/opt/task types/main.py'",
    ]
    # What the shell makes of it: the job's values, exactly.
    run = subprocess.run(
        ["/bin/sh", "-c", script.replace("exec ", 'echo "$RUNYARD_JOB_TOKEN" ', 1) + "pwd"],
        capture_output=True,
        text=True,
        env={"PATH": "/bin:/usr/bin"},
    )
    assert run.stdout.splitlines()[0].startswith("ry_job_7 'x' ")


def fake_slurm_commands(folder: Path, sbatch: str) -> Path:
    """A folder with ``sbatch`` (``sbatch`` is its body: it may save what it was given and
    print an id) and ``squeue``/``scontrol`` that know no job: enough for ``Slurm.submit``."""
    folder.mkdir()
    for name, body in (
        ("sbatch", sbatch),
        ("squeue", "exit 0"),
        ("scontrol", 'echo "Invalid job id specified" >&2; exit 1'),
    ):
        (folder / name).write_text(f"#!/bin/sh\n{body}\n")
        (folder / name).chmod(0o755)
    return folder


def submit_together(slurm: Slurm, jobs: list[Prepared]) -> list[SlurmJob | Exception]:
    """Each job submitted by a thread of its own, as a worker's slots do."""
    results: list[SlurmJob | Exception] = [Exception("not submitted")] * len(jobs)

    def submit(i: int) -> None:
        try:
            results[i] = slurm.submit(jobs[i], jobs[i].serial, None)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def array_jobs(tmp_path: Path, count: int, **fields: Any) -> list[Prepared]:
    jobs = []
    for serial in range(1, count + 1):
        job = prepared(tmp_path / str(serial), serial=serial, **fields)
        job.env["RUNYARD_JOB_SERIAL"] = str(serial)
        jobs.append(job)
    return jobs


def test_jobs_submitted_together_share_job_arrays_of_at_most_the_workers_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "calls"
    calls.mkdir()
    bin_dir = fake_slurm_commands(
        tmp_path / "bin",
        f'echo "$@" > {calls}/$$.args; cat > {calls}/$$.script; echo $$',
    )
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    slurm = Slurm(
        SlurmOptions(array=3, poll_seconds=3600), worker="w", server="s", data_dir=tmp_path / "w"
    )
    small = array_jobs(tmp_path / "small", 4)
    big = array_jobs(tmp_path / "big", 1, resources={"memory": "64G"})
    try:
        jobs = submit_together(slurm, [*small, *big])
        assert all(isinstance(job, SlurmJob) for job in jobs), jobs
        arrays: dict[str, list[str]] = {}
        for job in jobs:
            assert isinstance(job, SlurmJob)
            array, _, task = job.job_id.partition("_")
            arrays.setdefault(array, []).append(task)
        # 4 + 1 jobs: arrays of 3 and 1 for the same resources, 1 for the big job's.
        assert sorted(len(tasks) for tasks in arrays.values()) == [1, 1, 3], arrays
        big_array = jobs[-1].job_id.partition("_")[0]  # type: ignore[union-attr]
        for array, tasks in arrays.items():
            assert sorted(tasks) == [str(i) for i in range(len(tasks))]
            args = (calls / f"{array}.args").read_text()
            assert f"--array=0-{len(tasks) - 1}" in args
            assert ("--mem=64G" in args) == (array == big_array), args
        folders = list((tmp_path / "w" / "slurm-arrays").iterdir())
        assert len(folders) == 3
        for job, source in zip(jobs, [*small, *big], strict=True):
            assert isinstance(job, SlurmJob) and job.array is not None
            assert job.array.folder is not None
            task = job.job_id.partition("_")[2]
            assert (job.array.folder / f"{task}.log").resolve() == source.log.resolve()
            script = (job.array.folder / f"{task}.sh").read_text()
            # Its own serial, unless it is alone (then sbatch's environment has it).
            alone = len(job.array.jobs) == 1
            assert (f"export RUNYARD_JOB_SERIAL={source.serial}\n" in script) != alone
            assert f"cd '{source.workdir}'" in script
    finally:
        slurm.close()


def test_an_array_that_sbatch_refuses_fails_each_of_its_jobs_and_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = fake_slurm_commands(
        tmp_path / "bin",
        'echo "sbatch: error: Batch job submission failed: Invalid qos" >&2; exit 1',
    )
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    slurm = Slurm(SlurmOptions(array=10), worker="w", server="s", data_dir=tmp_path / "w")
    results = submit_together(slurm, array_jobs(tmp_path, 3))
    for result in results:
        assert isinstance(result, slurm_commands.SlurmRefused), result
        assert "Invalid qos" in str(result)
    assert list((tmp_path / "w" / "slurm-arrays").iterdir()) == []
