"""A batch of jobs to spawn: what each is (``JobSpawn``), the key that makes spawning it
idempotent, and the runs it touches held in memory while the batch is inserted (the follower
rule applied without reading jobs back). Used by ``runyard.operations.spawns``."""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from runyard.errors import Conflict, InvalidInput
from runyard.models import Entity, Job, Task
from runyard.spawnkeys import spawn_key
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
    serial: int | None = None  # one the spawning job reserved, or None: a new one


@dataclass(frozen=True, kw_only=True)
class StateChange:
    """A state change of a spawned job, applied after the first ``after`` jobs of its batch
    (as ``update_xf_job`` comes after the spawns in a script)."""

    serial: int
    state: str
    after: int


def segments(
    spawns: Sequence[JobSpawn], changes: Sequence[StateChange]
) -> list[tuple[list[JobSpawn], list[StateChange]]]:
    """A batch as consecutive parts, each applied as its spawns then its state changes: a
    new part starts where a spawn joins the run of a job whose state the part changes
    before it (so that it sees that state, as in the script's order). The seed's pattern
    (a run's first job Obsolete, the jobs that join it, the first job Done; run after run)
    is one part."""
    if any(not 0 <= c.after <= len(spawns) for c in changes):
        raise ValueError("a state change must come after 0 to all of the batch's jobs")
    ordered = sorted(changes, key=lambda c: c.after)
    root: dict[int, int] = {}  # serial of a job of the batch -> serial of its run's first job
    parts: list[tuple[list[JobSpawn], list[StateChange]]] = [([], [])]
    changed_runs: set[int] = set()
    pending = iter(ordered)
    change = next(pending, None)
    for number, spawn in enumerate(spawns):
        while change is not None and change.after <= number:
            parts[-1][1].append(change)
            changed_runs.add(root.get(change.serial, change.serial))
            change = next(pending, None)
        source = spawn.source_job_serial
        run = root.get(source, source) if source is not None else spawn.serial
        if spawn.serial is not None and run is not None:
            root[spawn.serial] = run
        if source is not None and run in changed_runs:
            parts.append(([], []))
            changed_runs = set()
        parts[-1][0].append(spawn)
    while change is not None:
        parts[-1][1].append(change)
        change = next(pending, None)
    return parts


def job_spawn_key(spawn: JobSpawn) -> str:
    """What identifies a spawned job among those of its spawning job (``runyard.spawnkeys``)."""
    return spawn_key(
        spawn.task_id, spawn.outputs, spawn.inputs, spawn.metadata, spawn.source_job_serial
    )


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


def run_entity(metadata: dict[str, Any]) -> Entity | None:
    """The entity of a run a spawn starts (``metadata["run_entity"]``), if any."""
    value = metadata.get("run_entity")
    if not isinstance(value, dict):
        return None
    return Entity(
        uuid=str(value["uuid"]), name=str(value["name"]), type=str(value.get("type", "Entity"))
    )


def check_metadata(where: str, metadata: dict[str, Any]) -> None:
    """Refuse metadata whose names or entity a run cannot take (``where``: the spawn's place)."""
    for key in ("run_display_name", "display_name"):
        value = metadata.get(key)
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{where}: metadata.{key} must be a string", field=key)
    entity = metadata.get("run_entity")
    if entity is None:
        return
    if (
        not isinstance(entity, dict)
        or not isinstance(entity.get("uuid"), str)
        or not entity["uuid"]
        or len(entity["uuid"]) > 64
        or not isinstance(entity.get("name"), str)
    ):
        raise InvalidInput(
            f"{where}: metadata.run_entity must be an Entity value "
            "{'type': 'Entity', 'uuid': ..., 'name': ...} (create_output_entity makes one)",
            field="run_entity",
        )
