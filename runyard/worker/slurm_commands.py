"""What a worker asks of Slurm and what Slurm's answers mean, as pure functions: the
``sbatch`` command line and batch script of a job (and of a job array, with its tasks'
scripts), the parsing of ``sbatch``, ``squeue`` and ``scontrol`` output, and the meaning of
an ended Slurm job (``decide_ending``). The commands themselves are run by ``slurm.Slurm``."""

from __future__ import annotations

import dataclasses
import math
import re
import shlex
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from runyard.worker.config import SlurmOptions
from runyard.worker.prepare import Prepared

# Slurm's job states in which the job has ended (squeue %T, scontrol JobState); every other
# one (PENDING, CONFIGURING, RUNNING, COMPLETING, SUSPENDED, REQUEUED, ...) has not.
ENDED = frozenset(
    {
        "COMPLETED",
        "FAILED",
        "TIMEOUT",
        "CANCELLED",
        "NODE_FAIL",
        "BOOT_FAIL",
        "PREEMPTED",
        "OUT_OF_MEMORY",
        "DEADLINE",
    }
)
# Ended through no fault of the job's script: the job goes back to the server, to run again.
NOT_THE_JOBS_FAULT = frozenset({"NODE_FAIL", "BOOT_FAIL", "PREEMPTED"})
# What a task type's "resources" may set of a worker's sbatch options (SlurmOptions).
RESOURCES = frozenset({"partition", "cpus", "memory"})


class SlurmUnavailable(RuntimeError):
    """Slurm could not take the job (slurmctld unreachable): not the job's fault."""


class SlurmRefused(RuntimeError):
    """sbatch refused the job (a bad partition, a limit): the job fails with its words."""


def time_limit(timeout_seconds: float | None, default: str | None) -> str | None:
    """The ``--time`` of a job: a minute above the task type's timeout (in whole minutes,
    Slurm's unit), so that the worker's own, exact timeout comes first; else the worker's
    default."""
    if timeout_seconds:
        return str(math.ceil(timeout_seconds / 60) + 1)
    return default


def sbatch_command(
    prepared: Prepared,
    *,
    serial: int,
    timeout_seconds: float | None,
    options: SlurmOptions,
    comment: str,
) -> list[str]:
    """The ``sbatch`` command line of a job (its batch script comes on standard input)."""
    return [
        "sbatch",
        "--parsable",
        f"--job-name=runyard-{serial}",
        f"--chdir={prepared.workdir}",
        f"--output={prepared.log}",
        "--open-mode=append",
        "--export=ALL",
        "--no-requeue",  # a failed node gives the job back to Runyard instead
        f"--comment={comment}",
        *resource_options(prepared, timeout_seconds, options),
    ]


def resource_options(
    prepared: Prepared, timeout_seconds: float | None, options: SlurmOptions
) -> list[str]:
    """What a job asks of Slurm (``--partition``, ``--cpus-per-task``, ``--mem``, ``--time``):
    the task type's resources over the worker's options. Jobs that ask the same may share a
    job array."""
    asked = {k: v for k, v in prepared.resources.items() if k in RESOURCES and v}
    options = dataclasses.replace(options, **asked)  # the task type's, over the worker's
    command = []
    if options.partition:
        command.append(f"--partition={options.partition}")
    if options.cpus:
        command.append(f"--cpus-per-task={options.cpus}")
    if options.memory:
        command.append(f"--mem={options.memory}")
    limit = time_limit(timeout_seconds, options.time)
    if limit:
        command.append(f"--time={limit}")
    return command


def array_command(
    serials: Sequence[int], folder: Path, resources: Sequence[str], comment: str
) -> list[str]:
    """The ``sbatch`` command line of a job array, one task per job (task i: ``serials[i]``),
    named after its lowest and highest serials. Task i runs ``FOLDER/i.sh``
    (``array_task_script``), its output appended to ``FOLDER/i.log``: a link to the job's
    ``job.log``, so that Slurm's own messages about the task land there too."""
    return [
        "sbatch",
        "--parsable",
        f"--array=0-{len(serials) - 1}",
        f"--job-name=runyard-{min(serials)}-{max(serials)}",
        f"--chdir={folder}",
        f"--output={folder}/%a.log",
        "--open-mode=append",
        "--export=ALL",
        "--no-requeue",
        f"--comment={comment}",
        *resources,
    ]


def array_script(folder: Path) -> str:
    """The batch script of a job array: each task runs its job's script (``i.sh``)."""
    return f'#!/bin/sh\nexec /bin/sh {shlex.quote(str(folder))}/"$SLURM_ARRAY_TASK_ID.sh"\n'


def common_env(envs: Sequence[dict[str, str]]) -> dict[str, str]:
    """The variables that every job of an array has, with the same value: ``sbatch``'s
    environment (``--export=ALL``); each task sets the rest of its job's itself."""
    first, *others = envs
    return {k: v for k, v in first.items() if all(e.get(k) == v for e in others)}


def array_task_script(prepared: Prepared, common: dict[str, str]) -> str:
    """A job's part of a job array: its own variables (those not in ``common``: its token,
    its serial, ...), its working folder, then its command in place of the shell."""
    lines = ["#!/bin/sh"]
    for name, value in sorted(prepared.env.items()):
        if common.get(name) != value and _NAME.fullmatch(name):
            lines.append(f"export {name}={shlex.quote(value)}")
    lines.append(f"cd {shlex.quote(str(prepared.workdir))} || exit 1")
    lines.append("exec " + shlex.join(prepared.command))
    return "\n".join(lines) + "\n"


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # a variable the shell can export


def batch_script(command: Sequence[str]) -> str:
    """The batch script: the job's command, run in place of the shell (its exit status is
    the Slurm job's)."""
    return "#!/bin/sh\nexec " + shlex.join(command) + "\n"


def parse_job_id(output: str) -> str:
    """The job id ``sbatch --parsable`` prints (``ID`` or ``ID;CLUSTER``; of a job array,
    its tasks are ``ID_0``, ``ID_1``, ...)."""
    job_id = output.strip().split(";", 1)[0]
    if not job_id.isdigit():
        raise SlurmRefused(f"sbatch printed no job id: {output.strip()!r}")
    return job_id


def parse_elapsed(text: str) -> float:
    """Seconds of squeue's time used: ``S``, ``M:SS``, ``H:MM:SS`` or ``D-H:MM:SS``."""
    days, _, clock = text.strip().rpartition("-")
    seconds = 0.0
    for part in clock.split(":"):
        seconds = seconds * 60 + int(part)
    return seconds + (int(days) * 86400 if days else 0)


def parse_squeue(output: str) -> dict[str, tuple[str, float]]:
    """Each job's state and time used, from ``squeue -o %i|%T|%M``."""
    jobs: dict[str, tuple[str, float]] = {}
    for line in output.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 3:
            continue
        job_id, state, used = parts
        try:
            jobs[job_id] = (state.rstrip("+"), parse_elapsed(used))
        except ValueError:
            jobs[job_id] = (state.rstrip("+"), 0.0)
    return jobs


def parse_exit_code(output: str) -> tuple[int, int]:
    """The exit status and signal of ``scontrol show job -o``'s ``ExitCode=X:Y``."""
    match = re.search(r"\bExitCode=(\d+):(\d+)", output)
    return (int(match[1]), int(match[2])) if match else (0, 0)


@dataclass(frozen=True, kw_only=True)
class Ending:
    """What an ended Slurm job means to the runner."""

    code: int  # as a process's exit status: the script's, or minus a signal number
    failure: str = ""  # why the job failed, where its exit status does not say it
    give_back: str = ""  # not the job's fault: it goes back to the server, to run again
    timed_out: bool = False  # Slurm ended it at its time limit


def decide_ending(job_id: str, state: str, status: int, signum: int, *, cancelled: bool) -> Ending:
    """The meaning of a Slurm job's end: its state, ``ExitCode=status:signum``, and whether
    the worker cancelled it."""
    code = status if status else (-signum if signum else 0)
    if state == "COMPLETED":
        return Ending(code=code)
    if state == "FAILED":
        return Ending(code=code or 1)
    if state == "CANCELLED" and cancelled:
        return Ending(code=-signal.SIGKILL)
    if state == "TIMEOUT":
        return Ending(
            code=code or -signal.SIGTERM,
            timed_out=True,
            failure=f"Slurm ended its job {job_id} at the job's time limit (TIMEOUT)",
        )
    if state in NOT_THE_JOBS_FAULT:
        return Ending(code=-signal.SIGKILL, give_back=f"Slurm job {job_id} ended {state}")
    why = {
        "CANCELLED": "was cancelled in Slurm, not by Runyard (scancel)",
        "OUT_OF_MEMORY": "ran out of memory (OUT_OF_MEMORY: more than its --mem)",
        "DEADLINE": "reached its deadline (DEADLINE)",
    }.get(state, f"ended {state}")
    return Ending(code=code or -signal.SIGKILL, failure=f"Slurm job {job_id} {why}")
