"""A batch of jobs to spawn: what each is (``JobSpawn``), the key that makes spawning it
idempotent, and the runs it touches held in memory while the batch is inserted (the follower
rule applied without reading jobs back). Used by ``runyard.operations.spawns``."""

from __future__ import annotations

import gc
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from runyard.errors import Conflict
from runyard.models import Job, Task
from runyard.states import JobState, decide_followers


@dataclass(frozen=True, kw_only=True)
class JobSpawn:
    """One job to spawn: without ``source_job_serial`` it starts a new run."""

    task_id: int
    outputs: dict[str, Any] = field(default_factory=dict)
    state: str = JobState.DONE.value
    sort_order: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    source_job_serial: int | None = None


# Canonical JSON: sorted keys, no spaces (json.dumps with these arguments makes an encoder
# per call, a third of the time of a key).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def job_spawn_key(spawn: JobSpawn) -> str:
    """What identifies a spawned job among those of its spawning job: not its sort order
    (a retried search computes new ones) nor its state, nor the entity's uuid (scripts
    make a fresh uuid each time); everything else."""
    metadata = spawn.metadata
    entity = metadata.get("run_entity")
    if isinstance(entity, dict):
        metadata = {**metadata, "run_entity": {k: v for k, v in entity.items() if k != "uuid"}}
    identity = {
        "task": spawn.task_id,
        "outputs": spawn.outputs,
        "inputs": spawn.inputs,
        "metadata": metadata,
        "run": spawn.source_job_serial,
    }
    return hashlib.sha256(_CANONICAL.encode(identity).encode()).hexdigest()


class RunsInMemory:
    """The live jobs of the runs a batch touches, by run: those of the runs it joins (read
    once) and the ones it spawns; what follower rule needs, without reading them back."""

    def __init__(self, tasks: list[Task], live: list[Job]) -> None:
        self.tasks = tasks
        self.by_id = {t.id: t for t in tasks}
        self.live: dict[int, set[str]] = defaultdict(set)
        self.done: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
        self._downstream: dict[int, list[Task]] = {}
        for job in live:
            self._record(job.task_id, job.run_id, job.state, job.outputs)

    def _record(self, task_id: int, run_id: int, state: str, outputs: dict[str, Any]) -> None:
        if state == JobState.OBSOLETE:
            return
        name = self.by_id[task_id].name
        self.live[run_id].add(name)
        if state == JobState.DONE:
            self.done[run_id][name] = outputs

    def add(self, spawn: JobSpawn, run_id: int) -> None:
        """Record a spawned job; refuse a second live job of one task in one run."""
        name = self.by_id[spawn.task_id].name
        if spawn.state != JobState.OBSOLETE and name in self.live[run_id]:
            raise Conflict(
                f"the run of job {spawn.source_job_serial} has a live job of task {name!r} "
                "already; a run has one live job per task",
                task=name,
                serial=spawn.source_job_serial,
            )
        self._record(spawn.task_id, run_id, spawn.state, spawn.outputs)

    def followers(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        """The rows of the follower jobs of a job spawned Done (SPEC section 2)."""
        run_id = row["run_id"]
        done_task = self.by_id[row["task_id"]]
        plans = decide_followers(
            done_task, self._taking_from(done_task), self.done[run_id], self.live[run_id]
        )
        rows = []
        for plan in plans:
            task = self.by_id[plan.task_id]
            self.live[run_id].add(task.name)
            rows.append(
                {
                    "run_id": run_id,
                    "task_id": plan.task_id,
                    "task_type_id": task.task_type.id,
                    "state": plan.state.value,
                    "inputs": plan.inputs,
                }
            )
        return rows

    def _taking_from(self, done_task: Task) -> list[Task]:
        """The tasks with inputs from ``done_task``, in order: the only ones the follower
        rule can create a job of when its job becomes Done (the others it passes over)."""
        found = self._downstream.get(done_task.id)
        if found is None:
            found = [t for t in self.tasks if done_task.name in t.upstream_names()]
            self._downstream[done_task.id] = found
        return found


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause CPython's cyclic garbage collector. A batch of 10,000 jobs makes about half a
    million objects that live until it commits; meanwhile the collector would go over the
    whole heap again and again (about 1.5 s of a 100,000-job spawn, measured). Reference
    counting frees them all the same. The thread that paused it resumes it; a batch that
    overlaps another in another thread may run with the collector on (only slower)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def first_of_each(spawns: Sequence[JobSpawn], keys: list[str]) -> list[tuple[JobSpawn, str]]:
    """Each spawn with its key, a key repeated in the batch only once (the same job)."""
    seen: set[str] = set()
    result = []
    for spawn, key in zip(spawns, keys, strict=True):
        if key not in seen:
            seen.add(key)
            result.append((spawn, key))
    return result
