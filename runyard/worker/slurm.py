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

With ``--slurm-array N``, jobs that ask Slurm for the same resources and are submitted
within ``--slurm-array-wait`` of the first (a claim brings many at once) go as one job
array of up to N tasks: one ``sbatch`` for them all. Task i runs the script ``i.sh`` of the
array's folder (under the worker's data directory: the job's own variables, its working
folder, its command), its output appended to ``i.log``, a link to the job's ``job.log``.
Each task is followed, timed and cancelled on its own (``ID_i``), as a job of its own would
be. How jobs are gathered into arrays: ``slurm_arrays``.

The task type's timeout counts the script's run time as Slurm measures it (``squeue``'s
time used), not the time the job waits in Slurm's queue; at the timeout the worker cancels
the job (``scancel``). Slurm's own time limit (``--time``) is set a minute above it, for the
case when the worker is gone.

The commands' lines and what their answers mean are pure functions, in ``slurm_commands``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from runyard.errors import ConfigError
from runyard.worker.config import SlurmOptions
from runyard.worker.prepare import Prepared
from runyard.worker.slurm_arrays import Gathering, JobArray, write_array_folder
from runyard.worker.slurm_commands import (
    ENDED,
    Ending,
    SlurmRefused,
    SlurmUnavailable,
    array_command,
    array_script,
    batch_script,
    decide_ending,
    parse_exit_code,
    parse_job_id,
    parse_squeue,
    resource_options,
    sbatch_command,
)

log = logging.getLogger("runyard.worker")

COMMANDS = ("sbatch", "squeue", "scontrol", "scancel")
CANCEL_WAIT = 60.0  # seconds a cancelled job may take to be seen ended before we stop waiting
CANCEL_AGAIN = 10.0  # seconds after which a cancelled job not seen ended is cancelled again
COMMAND_TIMEOUT = 120.0  # seconds for one sbatch, squeue, scontrol or scancel


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
        self.array: JobArray | None = None  # the job array it is a task of

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

    def __init__(self, options: SlurmOptions, *, worker: str, server: str, data_dir: Path) -> None:
        self.options = options
        self.arrays = data_dir / "slurm-arrays"  # the folders of job arrays (--slurm-array)
        self._gathering = Gathering(options.array, options.array_wait)
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
        restarted): their leases are gone and the server runs them again. The folders of its
        job arrays go too."""
        shutil.rmtree(self.arrays, ignore_errors=True)
        done = _command(["squeue", "--noheader", "--me", "--array", "--format=%i|%k"])
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
        """Hand the prepared job to ``sbatch``, in the job's environment (with
        ``--slurm-array``: as a task of a job array, with the jobs submitted with it)."""
        if self.options.array > 1:
            return self._submit_in_array(prepared, serial, timeout_seconds)
        command = sbatch_command(
            prepared,
            serial=serial,
            timeout_seconds=timeout_seconds,
            options=self.options,
            comment=self.comment,
        )
        job_id = _sbatch(command, batch_script(prepared.command), prepared.env, prepared.workdir)
        job = SlurmJob(job_id, self)
        log.info("job %s: Slurm job %s", serial, job_id)
        self._follow([job])
        return job

    def _submit_in_array(
        self, prepared: Prepared, serial: int, timeout_seconds: float | None
    ) -> SlurmJob:
        resources = tuple(resource_options(prepared, timeout_seconds, self.options))
        array, index = self._gathering.join(prepared, serial, resources, self._submit_array)
        return array.jobs[index]

    def _submit_array(self, array: JobArray) -> None:
        """Write the array's folder, then ``sbatch --array``."""
        serials = [serial for _, serial in array.members]
        self.arrays.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"runyard-{serials[0]}-", dir=self.arrays))
        try:
            common = write_array_folder(folder, array.members)
            env = {"PATH": os.environ.get("PATH", os.defpath), **common}  # to find sbatch
            job_id = _sbatch(
                array_command(serials, folder, array.resources, self.comment),
                array_script(folder),
                env,
                folder,
            )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        array.folder, array.left = folder, len(serials)
        array.jobs = [SlurmJob(f"{job_id}_{i}", self) for i in range(len(serials))]
        for job in array.jobs:
            job.array = array
        log.info("jobs %s: Slurm job array %s", ", ".join(map(str, serials)), job_id)
        self._follow(array.jobs)

    def _follow(self, jobs: list[SlurmJob]) -> None:
        """Have the poller follow newly submitted jobs (started with the first)."""
        with self._lock:
            for job in jobs:
                self._jobs[job.job_id] = job
            if self._poller is None:
                self._poller = threading.Thread(target=self._poll_loop, name="slurm", daemon=True)
                self._poller.start()

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
            [
                "squeue",
                "--noheader",
                "--states=all",
                "--array",
                "--format=%i|%T|%M",
                f"--jobs={ids}",
            ]
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
        last_of = None  # the job array whose last task this was
        with self._lock:
            self._jobs.pop(job.job_id, None)
            if job.array is not None:
                job.array.left -= 1
                last_of = job.array if job.array.left == 0 else None
        if last_of is not None and last_of.folder is not None:
            shutil.rmtree(last_of.folder, ignore_errors=True)
        job._end(ending, state or "UNKNOWN")


def _sbatch(command: list[str], script: str, env: dict[str, str], cwd: Path) -> str:
    """Run ``sbatch`` with the batch script on its standard input; the job id it gave."""
    try:
        done = subprocess.run(
            command,
            input=script,
            env=env,
            cwd=cwd,
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
    return parse_job_id(done.stdout)


def _command(argv: list[str], timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout
    )
