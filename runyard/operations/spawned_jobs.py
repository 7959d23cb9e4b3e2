"""Spawned jobs: one part of a spawning job's batch checked (all of it, before any change),
keyed, and inserted with the runs it starts and the followers of the jobs spawned Done, a few
statements per batch, not per job. A job spawned before with the same key is answered as it is
now, and a serial reserved for it becomes an alias of that job's. The base of
``SpawnManager`` (see ``spawns.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection

from runyard.errors import Conflict, InvalidInput, NotFound
from runyard.models import Job, SpawnedJob, Task
from runyard.operations.spawn_batch import (
    JobSpawn,
    RunsInMemory,
    check_metadata,
    first_of_each,
    job_spawn_key,
    run_entity,
)
from runyard.operations.spawned_states import SpawnedStates
from runyard.sortorder import is_key, keys_after
from runyard.states import JobState
from runyard.store import runs as run_rows
from runyard.store import spawns as spawn_rows
from runyard.validation import check_job_inputs, check_outputs

SPAWN_STATES = (JobState.DONE, JobState.OBSOLETE)


class SpawningJobs(SpawnedStates):
    def _spawn(
        self,
        conn: Connection,
        spawner: Job,
        tasks: list[Task],
        spawns: Sequence[JobSpawn],
        reserved: list[tuple[int, int]],
        alias: dict[int, int],
    ) -> list[SpawnedJob]:
        """Spawn jobs (one part of a batch); ``alias`` learns the reserved serials answered
        by another job (the same job spawned twice)."""
        spawns, keys, by_key = self._keyed(conn, spawner.serial, spawns, alias)
        sources = self._check_spawns(conn, spawner, tasks, spawns, reserved)
        new = [(s, key) for s, key in first_of_each(spawns, keys) if key not in by_key]
        if new:
            by_key.update(self._insert(conn, spawner, tasks, sources, new))
        for spawn, key in zip(spawns, keys, strict=True):
            if spawn.serial is not None and by_key[key].serial != spawn.serial:
                alias[spawn.serial] = by_key[key].serial
        return [by_key[key] for key in keys]

    def _keyed(
        self, conn: Connection, spawner: int, spawns: Sequence[JobSpawn], alias: dict[int, int]
    ) -> tuple[list[JobSpawn], list[str], dict[str, SpawnedJob]]:
        """The spawns with their sources' aliases applied, their keys, and the jobs spawned
        before with those keys. A reserved serial answered by a job spawned before (or by an
        earlier spawn of the batch with the same key) becomes an alias, and the keys of the
        spawns that join it are made again."""
        while True:
            aliased = [_aliased(s, alias) for s in spawns]
            keys = [job_spawn_key(s) for s in aliased]
            by_key = spawn_rows.spawned_jobs(conn, spawner, keys)
            first: dict[str, int | None] = {}
            found: dict[int, int] = {}
            for spawn, key in zip(aliased, keys, strict=True):
                answer = by_key[key].serial if key in by_key else first.get(key)
                serial = spawn.serial
                if (
                    serial is not None
                    and answer is not None
                    and answer != alias.get(serial, serial)
                ):
                    found[serial] = answer
                first.setdefault(key, spawn.serial)
            joining = {s.source_job_serial for s in aliased} & set(found)
            alias.update(found)
            if not joining:
                return aliased, keys, by_key

    def _check_spawns(
        self,
        conn: Connection,
        spawner: Job,
        tasks: list[Task],
        spawns: Sequence[JobSpawn],
        reserved: Sequence[tuple[int, int]] = (),
    ) -> dict[int, Job]:
        """Refuse a batch with anything wrong in it (before any change); the source jobs
        spawned before (a source may also be a job earlier in the batch)."""
        by_id = {t.id: t for t in tasks}
        in_batch = {s.serial for s in spawns if s.serial is not None}
        wanted = {s.source_job_serial for s in spawns if s.source_job_serial is not None}
        sources = spawn_rows.get_jobs(conn, sorted(wanted - in_batch))
        earlier: set[int] = set()
        for number, spawn in enumerate(spawns):
            where = f"jobs[{number}]"
            if spawn.serial is not None:
                if not any(a <= spawn.serial <= b for a, b in reserved):
                    raise InvalidInput(
                        f"{where}: serial {spawn.serial} was not reserved by job "
                        f"{spawner.serial}; reserve serials first (POST /api/spawn/serials)",
                        serial=spawn.serial,
                    )
                earlier.add(spawn.serial)
            task = by_id.get(spawn.task_id)
            if task is None:
                raise NotFound(
                    f"{where}: no task with id {spawn.task_id} in the spawning job's workflow",
                    task=spawn.task_id,
                )
            if spawn.state not in SPAWN_STATES:
                raise InvalidInput(
                    f"{where}: a job is spawned Done or Obsolete, not {spawn.state!r}",
                    state=spawn.state,
                )
            problem = check_outputs(task.task_type, spawn.outputs) or check_job_inputs(
                task.task_type, spawn.inputs
            )
            if problem:
                raise InvalidInput(f"{where}: {problem}", task=task.name)
            if spawn.sort_order is not None and not is_key(spawn.sort_order):
                raise InvalidInput(
                    f"{where}: {spawn.sort_order!r} is not a sort order; make sort orders "
                    "with get_new_source_job_sort_orders",
                    sort_order=spawn.sort_order,
                )
            check_metadata(where, spawn.metadata)
            if spawn.source_job_serial is not None and spawn.source_job_serial not in (
                earlier - {spawn.serial}
            ):
                source = sources.get(spawn.source_job_serial)
                if source is None or source.workflow_id != spawner.workflow_id:
                    raise NotFound(
                        f"{where}: no job with serial {spawn.source_job_serial} in the "
                        "spawning job's workflow",
                        serial=spawn.source_job_serial,
                    )
        return sources

    def _insert(
        self,
        conn: Connection,
        spawner: Job,
        tasks: list[Task],
        sources: dict[int, Job],
        new: list[tuple[JobSpawn, str]],
    ) -> dict[str, SpawnedJob]:
        by_id = {t.id: t for t in tasks}
        now = self.now()
        done = JobState.DONE.value
        run_of = self._new_runs(conn, spawner.workflow_id, [s for s, _ in new])
        in_batch = {s.serial: s for s, _ in new if s.serial is not None}
        for spawn, _ in new:
            source = spawn.source_job_serial
            if source is not None:
                joins = sources.get(source)
                run_of[id(spawn)] = joins.run_id if joins else run_of[id(in_batch[source])]
        joined = {
            sources[s.source_job_serial].run_id for s, _ in new if s.source_job_serial in sources
        }
        runs = RunsInMemory(tasks, spawn_rows.live_jobs_in_runs(conn, sorted(joined)))
        rows: list[dict[str, Any]] = [
            {
                "run_id": run_of[id(spawn)],
                "task_id": spawn.task_id,
                "task_type_id": by_id[spawn.task_id].task_type.id,
                "state": spawn.state,
                "inputs": spawn.inputs,
                "outputs": spawn.outputs,
                "metadata": spawn.metadata,
                "finished_at": now if spawn.state == done else None,
                "spawn_key": key,
            }
            for spawn, key in new
        ]
        for (spawn, _), row in zip(new, rows, strict=True):
            runs.add(spawn, row["run_id"])
        common = {"workflow_id": spawner.workflow_id, "created_at": now}
        serials = self._insert_jobs(
            conn, rows, [s.serial for s, _ in new], common | {"spawned_by_job": spawner.serial}
        )
        followers = [f for row in rows if row["state"] == done for f in runs.followers(row)]
        spawn_rows.insert_followers(conn, followers, common | {"outputs": {}, "metadata": {}})
        return {
            key: SpawnedJob(
                serial=serial,
                run_id=row["run_id"],
                task_id=row["task_id"],
                state=row["state"],
                spawned_by_job=spawner.serial,
                spawned_now=True,
            )
            for (_, key), row, serial in zip(new, rows, serials, strict=True)
        }

    @staticmethod
    def _insert_jobs(
        conn: Connection,
        rows: list[dict[str, Any]],
        reserved: list[int | None],
        common: dict[str, Any],
    ) -> list[int]:
        """Insert spawned jobs, those with a reserved serial under it; the serials in order."""
        given = [r | {"serial": s} for r, s in zip(rows, reserved, strict=True) if s is not None]
        taken = spawn_rows.existing_serials(conn, [row["serial"] for row in given])
        if taken:
            serial = taken[0]
            raise Conflict(f"serial {serial} is a job already; a reserved serial is used once",
                           serial=serial)  # fmt: skip
        spawn_rows.insert_jobs_with_serials(conn, given, common)
        fresh = iter(
            spawn_rows.insert_jobs(
                conn, [r for r, s in zip(rows, reserved, strict=True) if s is None], common
            )
        )
        return [s if s is not None else next(fresh) for s in reserved]

    def _new_runs(
        self, conn: Connection, workflow_id: int, spawns: list[JobSpawn]
    ) -> dict[int, int]:
        """Insert a run for each spawn that starts one; id(spawn) -> run id."""
        starting = [s for s in spawns if s.source_job_serial is None]
        if not starting:
            return {}
        given = [s.sort_order for s in starting if s.sort_order is not None]
        last = max([*given, run_rows.last_sort_order(conn, workflow_id) or ""]) or None
        fresh = iter(keys_after(last, sum(1 for s in starting if s.sort_order is None)))
        entities = [run_entity(s.metadata) for s in starting]
        entity_ids = spawn_rows.entity_ids(conn, [e for e in entities if e is not None])
        now = self.now()
        rows = []
        for spawn, entity in zip(starting, entities, strict=True):
            sort_order = spawn.sort_order or next(fresh)
            rows.append(
                {
                    "name": spawn.metadata.get("run_display_name") or f"Run {sort_order}",
                    "sort_order": sort_order,
                    "entity_id": entity_ids[entity.uuid] if entity else None,
                }
            )
        common = {
            "workflow_id": workflow_id,
            "priority": "normal",
            "obsolete": False,
            "created_at": now,
        }
        ids = spawn_rows.insert_runs(conn, rows, common)
        return {id(spawn): run_id for spawn, run_id in zip(starting, ids, strict=True)}


def _aliased(spawn: JobSpawn, alias: dict[int, int]) -> JobSpawn:
    """``spawn`` joining the job answered for a reserved serial, not the serial itself."""
    source = spawn.source_job_serial
    if source is None or source not in alias:
        return spawn
    return replace(spawn, source_job_serial=alias[source])
