"""The states of spawned jobs: a spawning job sets the jobs it spawned Done (an Obsolete run's
first job, once the run is whole: its followers then) or Obsolete, one or many at once. The
base of ``SpawnManager``; see runyard.operations.spawns."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from runyard.errors import Forbidden, IllegalTransition, InvalidInput, NotFound
from runyard.models import Job
from runyard.operations.jobs import JobManager
from runyard.operations.spawn_batch import JobSpawn, RunsInMemory
from runyard.states import JobState, check_api_transition
from runyard.store import jobs as job_rows
from runyard.store import runs as run_rows
from runyard.store import spawns as spawn_rows

MAX_JOBS_PER_CALL = 10_000


class SpawnedStates(JobManager):
    def set_spawned_state(self, spawner: int, serial: int, state: str) -> Job:
        """Change the state of a job that job ``spawner`` spawned (Obsolete -> Done creates
        its followers then); a job already in ``state`` is answered as it is."""
        with self.store.read() as conn:
            job = _spawned_by(spawner, serial, spawn_rows.get_jobs(conn, [serial]))
        if job.state == state:
            return job  # already so: a retried spawning job sets it again
        return self.update_state(serial, state, actor=f"job {spawner}")

    def set_spawned_states(self, spawner: int, serials: Sequence[int], state: str) -> list[Job]:
        """``set_spawned_state`` for many jobs in one transaction (all or none); the jobs."""
        if len(serials) > MAX_JOBS_PER_CALL:
            raise InvalidInput(
                f"{len(serials)} jobs in one call; send at most {MAX_JOBS_PER_CALL} per call"
            )
        with self._write_and_notify() as conn:
            self._change_spawned(conn, spawner, serials, state)
            now = spawn_rows.get_jobs(conn, list(serials))
            return [now[serial] for serial in serials]

    def _change_spawned(
        self, conn: Connection, spawner: int, serials: Sequence[int], state: str
    ) -> None:
        """Set jobs that job ``spawner`` spawned Done (their followers then) or Obsolete; a job
        in that state already is left as it is."""
        target = JobState(state) if state in set(JobState) else None
        if target not in (JobState.DONE, JobState.OBSOLETE):
            raise InvalidInput(f"spawned jobs are set Done or Obsolete, not {state!r}")
        found = spawn_rows.get_jobs(conn, list(serials))
        asked = [_spawned_by(spawner, serial, found) for serial in dict.fromkeys(serials)]
        changed = [job for job in asked if job.state != target]
        if target == JobState.DONE:
            self._set_done_together(conn, changed)
        else:
            changed = self._set_obsolete_together(conn, changed)
        if changed:
            self._log(
                conn,
                f"job {spawner}",
                "job.state",
                f"job {spawner} set {len(changed)} spawned jobs {target}",
                workflow_id=changed[0].workflow_id,
                job_serial=spawner,
            )

    def _set_obsolete_together(self, conn: Connection, jobs: list[Job]) -> list[Job]:
        """Spawned jobs -> Obsolete, one by one, their runs locked first, all in id order:
        each job takes the study run (a reduce decision), so taking the next run after it
        would deadlock on PostgreSQL with a finish, an expiry or an obsolete holding that run
        (the one lock order: runs, jobs, the study run). A job Obsolete meanwhile is left."""
        run_rows.lock_runs(conn, [job.run_id for job in jobs])
        now = spawn_rows.get_jobs(conn, [job.serial for job in jobs])
        return [
            self._set_state(conn, now[job.serial], JobState.OBSOLETE)
            for job in jobs
            if now[job.serial].state != JobState.OBSOLETE
        ]

    def _set_done_together(self, conn: Connection, jobs: list[Job]) -> None:
        """Spawned jobs Obsolete -> Done at once (as ``_set_state`` one by one would): one
        guarded update, their followers worked out in memory and inserted together, one look
        at the reduces."""
        if not jobs:
            return
        for job in jobs:
            check_api_transition(job.serial, job.state, JobState.DONE)
        workflow_id = jobs[0].workflow_id
        run_ids = sorted({job.run_id for job in jobs})
        run_rows.lock_runs(conn, run_ids)
        tasks = self._tasks(conn, workflow_id)
        runs = RunsInMemory(tasks, spawn_rows.live_jobs_in_runs(conn, run_ids))
        for job in jobs:  # refuses a job whose task has a live job in its run already
            runs.add(_done(job), job.run_id)
        now = self.now()
        serials = [job.serial for job in jobs]
        changed = job_rows.set_states(
            conn, serials, JobState.DONE, JobState.OBSOLETE, lease_id=None, finished_at=now
        )
        if changed != len(serials):
            raise IllegalTransition("some of these jobs changed state meanwhile; try again")
        rows = [{"run_id": job.run_id, "task_id": job.task_id} for job in jobs]
        followers = [f for row in rows for f in runs.followers(row)]
        common = {"workflow_id": workflow_id, "created_at": now, "outputs": {}, "metadata": {}}
        spawn_rows.insert_followers(conn, followers, common)
        touched = {job.task_id for job in jobs} | {f["task_id"] for f in followers}
        self._refresh_reduces(conn, workflow_id, touched)


def _spawned_by(spawner: int, serial: int, found: dict[int, Job]) -> Job:
    """The job ``serial`` of ``found``, refused unless job ``spawner`` spawned it."""
    job = found.get(serial)
    if job is None:
        raise NotFound(f"no job with serial {serial}", serial=serial)
    if job.spawned_by_job != spawner:
        raise Forbidden(
            f"job {serial} was not spawned by job {spawner}; a job changes the state of the "
            "jobs it spawned only",
            serial=serial,
        )
    return job


def _done(job: Job) -> JobSpawn:
    """A spawned job as it is once Done, for ``RunsInMemory``."""
    return JobSpawn(
        task_id=job.task_id, outputs=job.outputs, state="Done", source_job_serial=job.serial
    )
