"""Job arrays (``runyard worker --executor slurm --slurm-array N``): jobs that ask Slurm
for the same resources and are submitted at about the same time (a claim brings many at
once) are gathered into one job array of up to N tasks, submitted with one ``sbatch``.

``Gathering`` holds the arrays being gathered, one per set of resources: a job joins the
open one (or opens one), and the job that opened it submits it for all, once it is full or
``--slurm-array-wait`` has passed. ``write_array_folder`` writes what the tasks run: task i
runs ``i.sh`` (its job's own variables, its working folder, its command), its output
appended to ``i.log``, a link to the job's ``job.log``. Submitting and following the tasks
is ``slurm.Slurm``'s."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from runyard.worker.prepare import Prepared
from runyard.worker.slurm_commands import array_task_script, common_env

if TYPE_CHECKING:
    from runyard.worker.slurm import SlurmJob


@dataclass(eq=False)
class JobArray:
    """Jobs gathered for one job array (they ask Slurm for the same ``resources``)."""

    resources: tuple[str, ...]
    members: list[tuple[Prepared, int]] = field(default_factory=list)  # with their serials
    full: threading.Event = field(default_factory=threading.Event)
    submitted: threading.Event = field(default_factory=threading.Event)
    jobs: list[SlurmJob] = field(default_factory=list)  # its tasks, once submitted
    error: Exception | None = None  # why it could not be submitted
    folder: Path | None = None  # its tasks' scripts and logs; removed once all have ended
    left: int = 0  # tasks not seen ended


class Gathering:
    """The job arrays being gathered, at most ``size`` jobs each."""

    def __init__(self, size: int, wait: float) -> None:
        self.size = size
        self.wait = wait  # seconds the array's first job waits for others to fill it
        self._lock = threading.Lock()
        self._open: dict[tuple[str, ...], JobArray] = {}

    def join(
        self,
        prepared: Prepared,
        serial: int,
        resources: tuple[str, ...],
        submit: Callable[[JobArray], None],
    ) -> tuple[JobArray, int]:
        """Add the job to the open array of its resources; once that array is submitted
        (by the job that opened it, with ``submit``), the array and the job's task index.
        Raise what submitting raised (to each of its jobs)."""
        with self._lock:
            array = self._open.get(resources)
            first = array is None
            if array is None:
                array = self._open[resources] = JobArray(resources)
            index = len(array.members)
            array.members.append((prepared, serial))
            if len(array.members) >= self.size:
                del self._open[resources]
                array.full.set()
        if first:
            array.full.wait(self.wait)
            with self._lock:
                if self._open.get(resources) is array:
                    del self._open[resources]
            try:
                submit(array)
            except Exception as exc:
                array.error = exc
            finally:
                array.submitted.set()
        array.submitted.wait()
        if array.error is not None:  # each of its jobs fails (or goes back) with its words
            raise type(array.error)(*array.error.args)
        return array, index


def write_array_folder(folder: Path, members: list[tuple[Prepared, int]]) -> dict[str, str]:
    """Each task's script and log link; the variables every job shares (``sbatch``'s
    environment, which ``--export=ALL`` hands to every task)."""
    common = common_env([prepared.env for prepared, _ in members])
    for i, (prepared, _) in enumerate(members):
        (folder / f"{i}.sh").write_text(array_task_script(prepared, common))
        (folder / f"{i}.log").symlink_to(prepared.log)
    return common
