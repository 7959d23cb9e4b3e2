"""Giving Running jobs back (Running -> Queued, no lease, no worker, the attempt not
counted): by their worker (``LeaseManager.release``) or because their run or workflow was
obsoleted. Their workers learn of it at the next heartbeat (HTTP 409) and stop the scripts.

And the jobs of a worker that registers again under its name: its earlier process is gone
with their scripts, so they are Queued again at once rather than when their leases run out;
the lost attempt counts, as an expired lease's does (Failed after the attempt limit)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from sqlalchemy import Connection

from runyard.errors import StaleLease
from runyard.models import Job, Run, Workflow
from runyard.operations.jobs import JobManager
from runyard.states import JobState
from runyard.store import jobs as job_rows
from runyard.store import leases as lease_rows
from runyard.store import runs as run_rows


class GivingBack(JobManager):
    """Giving Running jobs back: Queued again for any worker, the attempt not counted."""

    def _give_back(self, conn: Connection, job: Job, lease_id: str, **values: Any) -> Job:
        """The guarded update Running -> Queued under ``lease_id`` (``StaleLease`` if that
        lease no longer holds the job): no lease, no worker, the attempt not counted."""
        return self._transition(
            conn,
            job.serial,
            JobState.QUEUED,
            held_lease=lease_id,
            attempt=max(0, job.attempt - 1),
            started_at=None,
            lease_id=None,
            lease_expires_at=None,
            worker_id=None,
            **values,
        )

    def give_back_lost(self, worker_id: int, worker: str, *, keep: set[int]) -> list[int]:
        """The Running jobs of ``worker``, which has just registered again, but those it
        still holds (``keep``): Queued again at once, or Failed once they have had
        ``max_attempts`` attempts, each in a transaction of its own. The serials given back."""
        with self.store.read() as conn:
            running = job_rows.running_on_worker(conn, worker_id)
        given = []
        for job, lease_id in running:
            if job.serial in keep:
                continue
            with self._write_and_notify() as conn:
                try:
                    self._lose(conn, job, lease_id, worker)
                except StaleLease:
                    continue  # finished or given back meanwhile
            given.append(job.serial)
        return given

    def _lose(self, conn: Connection, job: Job, lease_id: str, worker: str) -> None:
        when = f"{self.now().astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
        line = (
            f"----- lost at {when}: worker {worker} started again, so its script of attempt "
            f"{job.attempt} is gone -----\n"
        )
        values: dict[str, Any] = {}
        target = JobState.QUEUED
        if job.attempt >= self.settings.max_attempts:
            target = JobState.FAILED
            values = {
                "error": f"worker {worker} started again while it ran the job, in the last of "
                f"{job.attempt} attempts; giving up",
                "finished_at": self.now(),
            }
        self._transition(
            conn,
            job.serial,
            target,
            held_lease=lease_id,
            lease_id=None,
            lease_expires_at=None,
            worker_id=None,
            log=lease_rows.log_with_line(line),
            **values,
        )
        done = "Failed" if target == JobState.FAILED else "Queued again"
        self._log(
            conn,
            f"worker {worker}",
            "job.give_back",
            f"job {job.serial} {done}: worker {worker} started again while it ran the job",
            workflow_id=job.workflow_id,
            job_serial=job.serial,
        )

    def _give_back_run(self, conn: Connection, run: Run, actor: str) -> list[int]:
        """Give back the Running jobs of ``run``, just obsoleted (its row locked). The
        serials given back."""
        running = job_rows.running_in_run(conn, run.id)
        return self._give_back_all(conn, running, f"run {run.name}", actor)

    def _give_back_workflow(self, conn: Connection, workflow: Workflow, actor: str) -> list[int]:
        """Give back the Running jobs of ``workflow``, being obsoleted (its reduce jobs too).
        The serials given back.

        On PostgreSQL the runs of those jobs are locked first, in id order, then each job's
        row, then the study run (a reduce decision): the order of a finish (its run, its job,
        the study run), so that the two wait for each other and never deadlock. The caller
        locks the workflow's row after this: a spawning job locks its own row, then the
        workflow's (a new task)."""
        running = job_rows.running_in_workflow(conn, workflow.id)
        reduces = {
            t.id for t in self._tasks(conn, workflow.id) if t.task_type.interface.kind == "reduce"
        }
        run_rows.lock_runs(conn, [job.run_id for job, _ in running if job.task_id not in reduces])
        return self._give_back_all(conn, running, f"workflow {workflow.name}", actor)

    def _give_back_all(
        self, conn: Connection, running: list[tuple[Job, str]], what: str, actor: str
    ) -> list[int]:
        """Give back ``running`` (jobs, each with the lease it was read with), because ``what``
        (``run NAME``, ``workflow NAME``) was obsoleted, saying so in each job's log and the
        activity log: their workers' next heartbeat is refused, which kills their scripts. A
        job finished since it was read keeps its result. The serials given back."""
        when = f"{self.now().astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
        given = []
        for job, lease_id in running:
            line = (
                f"----- given back at {when}: {what} was obsoleted by {actor}; "
                f"the script on worker {job.worker} is stopped -----\n"
            )
            try:
                self._give_back(conn, job, lease_id, log=lease_rows.log_with_line(line))
            except StaleLease:
                continue  # finished first: its result and followers stand
            self._log(
                conn,
                actor,
                "job.give_back",
                f"job {job.serial} given back (it was Running on worker {job.worker}): "
                f"its {what} was obsoleted",
                workflow_id=job.workflow_id,
                job_serial=job.serial,
            )
            given.append(job.serial)
        return given
