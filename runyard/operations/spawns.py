"""Spawning: a running job creates tasks, runs and jobs in its own workflow (SPEC section 4).

Spawning is idempotent per spawning job. A spawned task is keyed by (the spawning job's
task, spawn key): spawning it again answers the existing task. A spawned job is keyed by
(the spawning job, a SHA-256 of what was spawned: task, outputs, inputs, metadata without
the entity's uuid, and the run it joins); spawning it again answers the existing job and
its run. So a spawning job retried after a crash gets the same tasks, runs and jobs back,
none twice. Both keys are unique in the database.

A batch of jobs is one transaction: runs, jobs and the followers of the jobs created Done
are inserted with a few statements per batch, not per job (``spawned_jobs.py``); the states
of the jobs spawned are changed in ``spawned_states.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from typing import Any

from sqlalchemy import Connection

from runyard.errors import Conflict, InvalidInput, NotFound
from runyard.models import Job, SpawnedJob, Task
from runyard.operations.spawn_batch import JobSpawn, StateChange, collector_paused, segments
from runyard.operations.spawned_jobs import SpawningJobs
from runyard.operations.spawned_states import MAX_JOBS_PER_CALL
from runyard.states import JobState
from runyard.store import spawns as spawn_rows
from runyard.store import task_types as task_type_rows
from runyard.store import workflows as workflow_rows
from runyard.validation import spawned_task_inputs


class SpawnManager(SpawningJobs):
    def _spawning_job(self, conn: Connection, serial: int) -> Job:
        job = spawn_rows.lock_job(conn, serial)
        if job is None:
            raise NotFound(f"no job with serial {serial}", serial=serial)
        if job.state != JobState.RUNNING:
            raise Conflict(f"job {serial} is {job.state}: only a Running job spawns", serial=serial)
        return job

    # -- tasks ------------------------------------------------------------------------------

    def spawn_task(
        self,
        serial: int,
        *,
        task_type_name: str,
        task_type_version: str | None,
        name: str,
        spawn_key: str | None = None,
        inputs: Sequence[dict[str, Any]] = (),
    ) -> tuple[Task, str]:
        """The task spawned by job ``serial``'s task with ``spawn_key`` (default: ``name``):
        created now in the job's workflow, or the one created before. With its key."""
        key = spawn_key or name
        with self._write_and_notify() as conn:
            spawner = self._spawning_job(conn, serial)
            workflow_id = spawner.workflow_id
            tasks = self._tasks(conn, workflow_id)
            existing = spawn_rows.spawned_task_id(conn, spawner.task_id, key)
            if existing is None:
                found = task_type_rows.find(conn, task_type_name, task_type_version)
                if not found:
                    which = f"version {task_type_version}" if task_type_version else "any version"
                    raise NotFound(
                        f"task type {task_type_name!r} ({which}) is not installed; find the "
                        "installed versions with find_task_types",
                        task_type=task_type_name,
                        version=task_type_version,
                    )
                if any(t.name == name for t in tasks):
                    raise Conflict(
                        f"the workflow has a task named {name!r} already (not one this task "
                        f"spawned with key {key!r}); spawn the task with another name",
                        task=name,
                    )
                checked = spawned_task_inputs(found[0], list(inputs), tasks)
                existing = spawn_rows.insert_spawned_task(
                    conn,
                    workflow_id=workflow_id,
                    name=name,
                    task_type_id=found[0].id,
                    inputs=checked,
                    spawned_by_task_id=spawner.task_id,
                    spawn_key=key,
                    now=self.now(),
                )
                self._log(
                    conn,
                    f"job {serial}",
                    "task.spawn",
                    f"job {serial} spawned task {name} ({found[0].name} {found[0].version})",
                    workflow_id=workflow_id,
                    job_serial=serial,
                )
            # Read past the cache: this transaction may still roll back.
            task = next(t for t in workflow_rows.list_tasks(conn, workflow_id) if t.id == existing)
            return task, key

    # -- jobs -------------------------------------------------------------------------------

    def reserve_serials(self, serial: int, count: int) -> tuple[list[tuple[int, int]], bool]:
        """Reserve ``count`` serials for the jobs that job ``serial`` will spawn: the ranges
        ``(first, last)``, and whether the job has spawned no job yet. Only then may a script
        be told a job's serial before the job is sent (a retried job is answered the jobs of
        its earlier attempt, whose serials it cannot know beforehand)."""
        if not 1 <= count <= MAX_JOBS_PER_CALL:
            raise InvalidInput(f"reserve 1 to {MAX_JOBS_PER_CALL} serials per call, not {count}")
        with self.store.write() as conn:
            self._spawning_job(conn, serial)
            fresh = not spawn_rows.has_spawned_jobs(conn, serial)
            return spawn_rows.reserve_serials(conn, serial, count), fresh

    def spawn_keys(self, serial: int, after: int = 0, limit: int = 10_000) -> list[tuple[str, int]]:
        """The keys (``runyard.spawnkeys``) and serials of the jobs job ``serial`` spawned, in
        serial order from above ``after``: what a retried job sent before."""
        if not 1 <= limit <= MAX_JOBS_PER_CALL:
            raise InvalidInput(f"limit is 1 to {MAX_JOBS_PER_CALL}, not {limit}", field="limit")
        with self.store.read() as conn:
            return spawn_rows.spawn_keys(conn, serial, after, limit)

    def spawn_jobs(self, serial: int, spawns: Sequence[JobSpawn]) -> list[SpawnedJob]:
        """Spawn a batch of jobs from job ``serial`` in one transaction; the jobs, in order
        (those spawned before with the same key are answered as they are now)."""
        return self.spawn_batch(serial, spawns, ())[0]

    def spawn_batch(
        self, serial: int, spawns: Sequence[JobSpawn], changes: Sequence[StateChange]
    ) -> tuple[list[SpawnedJob], list[SpawnedJob]]:
        """Spawn jobs and change the states of spawned jobs, in the order of a script's calls
        (``StateChange.after``), in one transaction: all or nothing. A job may carry a
        serial the job reserved (``reserve_serials``), and later items of the batch may name
        it. The spawned jobs, in order, and the changed jobs as they are at the end."""
        if len(spawns) + len(changes) > MAX_JOBS_PER_CALL:
            raise InvalidInput(
                f"{len(spawns) + len(changes)} jobs and state changes in one call; send at "
                f"most {MAX_JOBS_PER_CALL} per call"
            )
        try:
            parts = segments(spawns, changes)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        with collector_paused(), self._write_and_notify() as conn:
            spawner = self._spawning_job(conn, serial)
            tasks = self._tasks(conn, spawner.workflow_id)
            reserved = (
                spawn_rows.reservations(conn, serial) if any(s.serial for s in spawns) else []
            )
            alias: dict[int, int] = {}  # a reserved serial -> the job answered for it
            answered: list[SpawnedJob] = []
            for part_spawns, part_changes in parts:
                answered += self._spawn(conn, spawner, tasks, part_spawns, reserved, alias)
                for state, group in groupby(part_changes, key=lambda c: c.state):
                    serials = [alias.get(c.serial, c.serial) for c in group]
                    self._change_spawned(conn, serial, serials, state)
            created = sum(1 for job in answered if job.spawned_now)
            if created:
                self._log(
                    conn,
                    f"job {serial}",
                    "job.spawn",
                    f"job {serial} spawned {created} jobs",
                    workflow_id=spawner.workflow_id,
                    job_serial=serial,
                )
            changed = [alias.get(c.serial, c.serial) for c in changes]
            now = spawn_rows.spawned_jobs_by_serial(conn, changed)
            return answered, [now[s] for s in changed]

    # -- sort orders --------------------------------------------------------------------------

    def sort_orders(self, serial: int) -> list[str]:
        """The sort orders of the runs of job ``serial``'s workflow, in order."""
        with self.store.read() as conn:
            job = spawn_rows.get_jobs(conn, [serial]).get(serial)
            if job is None:
                raise NotFound(f"no job with serial {serial}", serial=serial)
            return spawn_rows.sort_orders(conn, job.workflow_id)
