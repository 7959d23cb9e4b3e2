"""Slurm as an executor (``runyard worker --executor slurm``): each job's script runs as a
Slurm batch job instead of a process of the worker's machine.

The job is prepared as any other (working folder, environment variables, the task type's
script, the Python of its environment); then ``Slurm.submit`` hands it to ``sbatch``, one
Slurm job per Runyard job, named ``runyard-SERIAL``, in the job's working folder, its output
appended to the job's ``job.log`` (which the worker's log pump streams as usual), with the
job's environment (``--export=ALL`` from an ``sbatch`` run in that environment). The script
talks to the server over HTTP as on any worker.

A ``SlurmJob`` is what the runner needs of a job's process: ``wait(timeout)`` and
``kill_group`` (``scancel``). One poller thread per worker asks ``squeue`` about all the
worker's Slurm jobs at once (``squeue`` and ``scontrol`` read slurmctld: no accounting
database needed) and, for a job that ended, ``scontrol show job`` for its ``ExitCode``; it
also sends the cancellations, so that no thread of the worker waits for Slurm while holding
a job's lock. While Slurm holds a job, pending or running, the worker holds it too: its slot
waits in ``SlurmJob.wait`` and the heartbeat renews its lease.

The task type's timeout counts the script's run time as Slurm measures it (``squeue``'s
time used), not the time the job waits in Slurm's queue; at the timeout the worker cancels
the job (``scancel``). Slurm's own time limit (``--time``) is set a minute above it, for the
case when the worker is gone.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runyard.errors import ConfigError
from runyard.worker.config import SlurmOptions

if TYPE_CHECKING:
    from runyard.worker.runner import Prepared

log = logging.getLogger("runyard.worker")

COMMANDS = ("sbatch", "squeue", "scontrol", "scancel")
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
CANCEL_WAIT = 60.0  # seconds a cancelled job may take to be seen ended before we stop waiting
CANCEL_AGAIN = 10.0  # seconds after which a cancelled job not seen ended is cancelled again
COMMAND_TIMEOUT = 120.0  # seconds for one sbatch, squeue, scontrol or scancel
# What a task type's "resources" may set of a worker's sbatch options (SlurmOptions).
RESOURCES = frozenset({"partition", "cpus", "memory"})


class SlurmUnavailable(RuntimeError):
    """Slurm could not take the job (slurmctld unreachable): not the job's fault."""


class SlurmRefused(RuntimeError):
    """sbatch refused the job (a bad partition, a limit): the job fails with its words."""


# -- what is asked of Slurm (pure) ------------------------------------------------------------


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
    command = [
        "sbatch",
        "--parsable",
        f"--job-name=runyard-{serial}",
        f"--chdir={prepared.workdir}",
        f"--output={prepared.log}",
        "--open-mode=append",
        "--export=ALL",
        "--no-requeue",  # a failed node gives the job back to Runyard instead
        f"--comment={comment}",
    ]
    asked = {k: v for k, v in prepared.resources.items() if k in RESOURCES and v}
    options = dataclasses.replace(options, **asked)  # the task type's, over the worker's
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


def batch_script(command: Sequence[str]) -> str:
    """The batch script: the job's command, run in place of the shell (its exit status is
    the Slurm job's)."""
    return "#!/bin/sh\nexec " + shlex.join(command) + "\n"


def parse_job_id(output: str) -> str:
    """The job id ``sbatch --parsable`` prints (``ID`` or ``ID;CLUSTER``)."""
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


# -- a job in Slurm ----------------------------------------------------------------------------


class SlurmJob:
    """A job's script as a Slurm batch job: what the runner needs of a process. ``pid`` is
    0: it has no process on this machine."""

    pid = 0

    def __init__(self, job_id: str, slurm: Slurm) -> None:
        self.job_id = job_id
        self.state = "PENDING"
        self.returncode: int | None = None
        self.failure = ""  # why it failed, when its exit status does not say it
        self._slurm = slurm
        self._changed = threading.Condition()
        self._ending: Ending | None = None
        self._used = 0.0  # run time so far (squeue's time used) ...
        self._used_at = time.monotonic()  # ... when it was read
        self.cancel_requested: float | None = None  # when kill_group asked (monotonic)
        self.cancel_sent: float | None = None  # when the poller last ran scancel for it

    def __repr__(self) -> str:
        return f"<Slurm job {self.job_id} {self.state}>"

    @property
    def ended(self) -> bool:
        return self._ending is not None

    def run_time(self) -> float:
        """Seconds the script has run, as Slurm counts them (not while pending)."""
        with self._changed:
            if self.state == "RUNNING":
                return self._used + time.monotonic() - self._used_at
            return self._used

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the job to end; its exit status (minus a signal number). With
        ``timeout``: raise ``subprocess.TimeoutExpired`` once the script has run that long,
        or if Slurm ended it at its time limit. Raise ``RuntimeError`` if it ended through
        no fault of its own (its node failed): the runner gives the job back."""
        with self._changed:
            while self._ending is None:
                pause = None
                if timeout is not None:
                    left = timeout - self.run_time()
                    if left <= 0:
                        raise subprocess.TimeoutExpired(f"Slurm job {self.job_id}", timeout)
                    pause = left
                if self.cancel_requested is not None:
                    left = self.cancel_requested + CANCEL_WAIT - time.monotonic()
                    if left <= 0:
                        log.warning("%r: not seen ended %s s after scancel", self, CANCEL_WAIT)
                        return -signal.SIGKILL
                    pause = left if pause is None else min(pause, left)
                self._changed.wait(pause)
            ending = self._ending
        if ending.give_back:
            raise RuntimeError(ending.give_back)
        if ending.timed_out and timeout is not None:
            raise subprocess.TimeoutExpired(f"Slurm job {self.job_id}", timeout)
        return ending.code

    def kill_group(self) -> None:
        """Cancel the Slurm job (``scancel``, sent by the poller: this does not wait)."""
        with self._changed:
            if self._ending is not None or self.cancel_requested is not None:
                return
            self.cancel_requested = time.monotonic()
        self._slurm.wake()

    # -- from the poller

    def _seen(self, state: str, used: float) -> None:
        with self._changed:
            self.state = state
            self._used, self._used_at = used, time.monotonic()
            self._changed.notify_all()

    def _end(self, ending: Ending, state: str) -> None:
        with self._changed:
            self.state = state
            self.returncode = ending.code
            self.failure = ending.failure
            self._ending = ending
            self._changed.notify_all()


# -- the worker's Slurm --------------------------------------------------------------------------


class Slurm:
    """A worker's link to Slurm: submits its jobs, follows them (one poller thread) and
    cancels them."""

    def __init__(self, options: SlurmOptions, *, worker: str, server: str) -> None:
        self.options = options
        # Marks the worker's Slurm jobs (sbatch --comment): those left by an earlier run of
        # the same worker are cancelled when it starts.
        self.comment = f"runyard worker {worker} of {server}"
        self._lock = threading.Lock()
        self._jobs: dict[str, SlurmJob] = {}  # submitted and not seen ended
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._poller: threading.Thread | None = None

    def check(self) -> None:
        """Fail at once, naming what is missing, if Slurm's commands cannot be run."""
        for name in COMMANDS:
            try:
                _command([name, "--version"], timeout=30)
            except (OSError, subprocess.SubprocessError) as exc:
                raise ConfigError(
                    f"--executor slurm needs Slurm's {name} on the PATH ({exc}): run the worker "
                    "on a machine that submits Slurm jobs (a cluster's login node)"
                ) from None

    def cancel_leftovers(self) -> list[str]:
        """Cancel the Slurm jobs an earlier run of this worker left (killed, or its machine
        restarted): their leases are gone and the server runs them again."""
        done = _command(["squeue", "--noheader", "--me", "--format=%i|%k"])
        if done.returncode != 0:
            log.warning("squeue: %s", done.stderr.strip())
            return []
        left = []
        for line in done.stdout.splitlines():
            job_id, _, comment = line.strip().partition("|")
            if comment == self.comment:
                left.append(job_id)
        if left:
            log.info("cancelling %d Slurm job(s) an earlier run left: %s", len(left), left)
            _command(["scancel", *left])
        return left

    def submit(self, prepared: Prepared, serial: int, timeout_seconds: float | None) -> SlurmJob:
        """Hand the prepared job to ``sbatch``, in the job's environment."""
        command = sbatch_command(
            prepared,
            serial=serial,
            timeout_seconds=timeout_seconds,
            options=self.options,
            comment=self.comment,
        )
        try:
            done = subprocess.run(
                command,
                input=batch_script(prepared.command),
                env=prepared.env,
                cwd=prepared.workdir,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            raise SlurmUnavailable(f"sbatch gave no answer in {COMMAND_TIMEOUT} s") from None
        if done.returncode != 0:
            message = done.stderr.strip() or f"sbatch exited with status {done.returncode}"
            if "Unable to contact slurm controller" in message or "timed out" in message:
                raise SlurmUnavailable(message)
            raise SlurmRefused(f"Slurm refused the job: {message}")
        job = SlurmJob(parse_job_id(done.stdout), self)
        log.info("job %s: Slurm job %s", serial, job.job_id)
        with self._lock:
            self._jobs[job.job_id] = job
            if self._poller is None:
                self._poller = threading.Thread(target=self._poll_loop, name="slurm", daemon=True)
                self._poller.start()
        return job

    def wake(self) -> None:
        self._wake.set()

    def close(self) -> None:
        self._closed.set()
        self._wake.set()
        if self._poller is not None:
            self._poller.join(timeout=COMMAND_TIMEOUT)

    # -- the poller

    def _poll_loop(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self.options.poll_seconds)
            self._wake.clear()
            with self._lock:
                jobs = list(self._jobs.values())
            if not jobs:
                continue
            try:
                self._cancel(jobs)
                self._poll(jobs)
            except (OSError, subprocess.SubprocessError) as exc:
                log.warning("Slurm: %s; trying again", exc)
            except Exception:
                log.exception("Slurm: polling failed; trying again")

    def _cancel(self, jobs: list[SlurmJob]) -> None:
        """Send the cancellations asked for (again if a job is not seen ended a while after)."""
        now = time.monotonic()
        due = [
            job
            for job in jobs
            if job.cancel_requested is not None
            and (job.cancel_sent is None or now - job.cancel_sent > CANCEL_AGAIN)
        ]
        if due:
            for job in due:
                job.cancel_sent = now
            done = _command(["scancel", *(job.job_id for job in due)])
            if done.returncode != 0:
                log.warning("scancel: %s", done.stderr.strip())

    def _poll(self, jobs: list[SlurmJob]) -> None:
        ids = ",".join(j.job_id for j in jobs)
        done = _command(
            ["squeue", "--noheader", "--states=all", "--format=%i|%T|%M", "--jobs=" + ids]
        )
        if done.returncode != 0 and "Invalid job id" not in done.stderr:
            log.warning("squeue: %s; trying again", done.stderr.strip())
            return
        seen = parse_squeue(done.stdout if done.returncode == 0 else "")
        for job in jobs:
            state, used = seen.get(job.job_id, ("", 0.0))
            if state in ENDED or not state:
                self._ended(job, state)
            else:
                job._seen(state, used)

    def _ended(self, job: SlurmJob, state: str) -> None:
        """A job squeue saw ended (or no longer knows): its exit code from scontrol."""
        done = _command(["scontrol", "--oneliner", "show", "job", job.job_id])
        if done.returncode == 0:
            match = re.search(r"\bJobState=(\S+)", done.stdout)
            state = match[1] if match else state
        elif "Invalid job id" not in done.stderr:
            log.warning("scontrol: %s; trying again", done.stderr.strip())
            return
        if state and state not in ENDED:  # ended after all? not yet: squeue was behind
            job._seen(state, job.run_time())
            return
        if not state:
            ending = Ending(
                code=-signal.SIGKILL,
                give_back=f"Slurm job {job.job_id} is no longer known to Slurm",
            )
        else:
            status, signum = parse_exit_code(done.stdout)
            ending = decide_ending(
                job.job_id, state, status, signum, cancelled=job.cancel_requested is not None
            )
        with self._lock:
            self._jobs.pop(job.job_id, None)
        job._end(ending, state or "UNKNOWN")


def _command(argv: list[str], timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout
    )
