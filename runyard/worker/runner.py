"""Run one job, in three steps: prepare (folder, script, environment: ``prepare``), run (a
process in its own process group, forked from the warm fork server or a plain subprocess; or,
for a task type with ``jobs_per_process`` > 1, a reused child of its own, see ``reuse``; or, on
a worker with ``--executor slurm``, a Slurm batch job, see ``slurm``; started and killed in
``processes``), record (the outcome, reported as complete or fail on the server, under the
job's lease)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runyard.worker.claimed import Claimed
from runyard.worker.forkserver import ForkServer
from runyard.worker.prepare import Prepared
from runyard.worker.processes import GiveBack, JobProcess, group_left, kill_group, start
from runyard.worker.reuse import ReusedJob, ReusePool
from runyard.worker.slurm import Slurm, SlurmJob
from runyard.worker.slurm_commands import SlurmRefused


@dataclass(frozen=True, kw_only=True)
class Outcome:
    ok: bool
    outputs: dict[str, Any]
    error: str
    workdir: Path | None
    clean: bool = False  # ok, and no process of the job is left (its folder may be reused)


def run(
    claimed: Claimed,
    prepared: Prepared,
    forkserver: ForkServer | None,
    children: ReusePool | None = None,
    slurm: Slurm | None = None,
) -> Outcome:
    """Run the script to its end (or its timeout); what it printed is the job log. Raises
    ``GiveBack`` if the fork server dies under the job (or its Slurm node fails), or if the
    script failed after its client gave up on an absent server (``give_back`` in its result
    file: ``runyard.task.job_client``)."""
    timeout = claimed.task_type.get("timeout_seconds")
    if claimed.released.is_set() or claimed.stale.is_set():  # while it was being prepared
        return Outcome(ok=False, outputs={}, error="not started", workdir=prepared.workdir)
    try:
        process = start(prepared, forkserver, children, slurm)
    except SlurmRefused as exc:  # sbatch said no (a bad partition, a limit): its words
        return _failed(prepared, str(exc))
    with claimed.reporting:  # a release or lost lease that came first kills it now
        claimed.process = process
        if claimed.released.is_set() or claimed.stale.is_set():
            kill_group(process)
    try:
        code = process.wait(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        kill_group(process)
        code = process.wait()
        timed_out = True
    except RuntimeError as exc:  # the fork server (Slurm node) died under the job: not its fault
        kill_group(process)
        raise GiveBack(str(exc)) from None
    finally:
        _done_with(claimed, process)
    result = _read_result(prepared.workdir / "result.json")
    if timed_out:
        error = f"timed out after {timeout} s (the task type's timeout); the script was killed"
    elif isinstance(process, SlurmJob) and process.failure:  # Slurm's reason, not a status
        error = process.failure
    elif code < 0:
        error = f"killed by signal {signal.Signals(-code).name}"
    elif code != 0 and result.get("give_back"):  # its server stayed away: not its fault
        raise GiveBack(f"the script could not reach the server: {result['give_back']}")
    elif code != 0 and result.get("error"):  # the script's own message (fail, error): as it is
        return Outcome(ok=False, outputs={}, error=result["error"], workdir=prepared.workdir)
    elif code != 0:
        error = f"the script exited with status {code}"
    else:
        outputs = result.get("outputs", {})
        clean = not group_left(process)
        return Outcome(ok=True, outputs=outputs, error="", workdir=prepared.workdir, clean=clean)
    return _failed(prepared, error)


def _done_with(claimed: Claimed, process: JobProcess) -> None:
    """The job's process has ended (or, reused, serves no more this job): from now on a
    release or a lost lease kills nothing. A reused child serves the next job only if
    nothing killed it or spoilt the job meanwhile."""
    if isinstance(process, ReusedJob):
        with claimed.reporting:
            claimed.process = None
            spoilt = claimed.released.is_set() or claimed.stale.is_set()
        process.end(keep=not spoilt)


def _failed(prepared: Prepared, error: str) -> Outcome:
    """A script that died: why, where its folder is kept, and the end of its log."""
    tail = _log_tail(prepared.log, 20)
    message = f"{error} (working folder kept: {prepared.workdir})" + (
        f"\nlog tail:\n{tail}" if tail else ""
    )
    return Outcome(ok=False, outputs={}, error=message, workdir=prepared.workdir)


def _log_tail(path: Path, lines: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 8192))
            data = f.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", errors="replace").strip().splitlines()[-lines:])


def result(claimed: Claimed, outcome: Outcome) -> dict[str, Any] | None:
    """The report of a finished job; from now on heartbeats read no more of its log, and
    the reporter adds the rest (``log``) once the heartbeats under way are answered."""
    with claimed.reporting:
        if claimed.released.is_set():
            return None  # given back meanwhile: another worker runs it
        claimed.finished = True
    item: dict[str, Any] = {"serial": claimed.serial, "lease": claimed.lease, "log": ""}
    if outcome.ok:
        return item | {"ok": True, "outputs": outcome.outputs}
    return item | {"ok": False, "error": outcome.error, "workdir": str(outcome.workdir or "")}


def _read_result(path: Path) -> dict[str, Any]:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return {}
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        data = json.loads(b"".join(chunks))
    except ValueError:
        return {"error": "the script wrote an unreadable result file"}
    finally:
        os.close(fd)
    return data if isinstance(data, dict) else {}
