"""The worker protocol: claims, heartbeats, completion, failure, release and lease expiry.

Every call carries the job's lease; a call with a lease that is no longer the job's current
one is refused (``StaleLease``, HTTP 409), so a worker that was cut off cannot overwrite a
newer attempt. A call made for a worker (``worker=``) acts only on that worker's jobs
(``Forbidden``, HTTP 403, for a job that another worker holds under that lease).

A job is given back (Running -> Queued, no lease, no worker, the attempt not counted) by its
worker (``release``) or when its run or its workflow is obsoleted (``GivingBack``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from runyard.errors import Forbidden, NotFound, RunyardError, StaleLease
from runyard.models import Job, Lease, Run, Workflow
from runyard.operations.jobs import MAX_LOG_CHARS, JobManager
from runyard.states import JobState
from runyard.store import jobs as job_rows
from runyard.store import runs as run_rows
from runyard.store import task_types as task_type_rows
from runyard.store import workers as worker_rows
from runyard.store.jobs import storable
from runyard.validation import check_outputs


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
                self._give_back(conn, job, lease_id, log=job_rows.log_with_line(line))
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


class LeaseManager(GivingBack):
    def claim(
        self, worker_id: int, provides: list[str], limit: int, *, cap: int | None = None
    ) -> list[tuple[Job, Lease]]:
        """Claim up to ``limit`` jobs that a worker providing ``provides`` can run; with
        ``cap`` (an admin's limit), never more than ``cap`` Running at once."""
        # Look first without the write lock: most claims of a waiting worker find nothing.
        with self.store.read() as conn:
            if cap is not None:
                held = worker_rows.running_jobs(conn, worker_id).get(worker_id, [])
                limit = min(limit, cap - len(held))
            ids = task_type_rows.ids_runnable_with(conn, provides)
            if limit <= 0 or not job_rows.any_claimable(conn, ids):
                return []
        with self.store.write() as conn:
            return job_rows.claim(
                conn,
                task_type_ids=ids,
                worker_id=worker_id,
                limit=limit,
                lease_seconds=self.settings.lease_seconds,
                now=self.now(),
            )

    def heartbeat(
        self, serial: int, lease_id: str, log: str = "", *, worker: str | None = None
    ) -> Lease:
        """Renew the lease (and add the script's new output to the job log)."""
        expires = self.now() + timedelta(seconds=self.settings.lease_seconds)
        with self.store.write() as conn:
            renewed = job_rows.renew_lease(conn, serial, lease_id, expires, worker)
            if renewed and log:
                job_rows.append_log(conn, serial, lease_id, log, MAX_LOG_CHARS)
            if not renewed:
                _check_holder(conn, serial, lease_id, worker)  # why: another worker's job?
                raise self._stale(conn, serial)
            job = job_rows.get_job(conn, serial)
            assert job is not None
            return Lease(
                job_serial=serial, lease_id=lease_id, attempt=job.attempt, expires_at=expires
            )

    def complete(
        self,
        serial: int,
        lease_id: str,
        outputs: dict[str, Any],
        log: str = "",
        *,
        worker: str | None = None,
    ) -> Job:
        """Record a job's outputs and its Done state, and create its followers, at once.
        Outputs that do not fit the interface fail the job instead. ``log`` is the output
        not sent with a heartbeat yet. The same call repeated (its answer was lost) is
        answered with the job as the first call left it, and records nothing."""
        with self._write_and_notify() as conn:
            job = self._locked(conn, serial, lease_id, worker)
            task_type = task_type_rows.get(conn, job.task_type_id)
            assert task_type is not None
            problem = check_outputs(task_type, outputs)
            try:
                self._append_log(conn, serial, lease_id, log)
                # The lease id stays on the finished job: it marks who finished it.
                common = {"lease_expires_at": None, "finished_at": self.now()}
                if problem:
                    return self._transition(
                        conn, serial, JobState.FAILED, held_lease=lease_id, error=problem, **common
                    )
                return self._transition(
                    conn,
                    serial,
                    JobState.DONE,
                    held_lease=lease_id,
                    outputs=outputs,
                    error="",
                    **common,
                )
            except StaleLease:
                repeated = (
                    self._finished_by(
                        conn, serial, lease_id, JobState.FAILED, error=storable(problem)
                    )
                    if problem
                    else self._finished_by(conn, serial, lease_id, JobState.DONE, outputs=outputs)
                )
                if repeated is None:
                    raise
                return repeated

    def fail(
        self,
        serial: int,
        lease_id: str,
        error: str,
        log: str = "",
        workdir: str = "",
        *,
        worker: str | None = None,
    ) -> Job:
        """The script failed: its message, the rest of its log and the working folder that
        the worker kept for inspection. Repeated, as ``complete``."""
        with self._write_and_notify() as conn:
            self._locked(conn, serial, lease_id, worker)
            try:
                self._append_log(conn, serial, lease_id, log)
                return self._transition(
                    conn,
                    serial,
                    JobState.FAILED,
                    held_lease=lease_id,
                    error=error or "failed",
                    finished_at=self.now(),
                    lease_expires_at=None,
                    workdir=workdir,
                )
            except StaleLease:
                repeated = self._finished_by(
                    conn, serial, lease_id, JobState.FAILED, error=storable(error or "failed")
                )
                if repeated is None:
                    raise
                return repeated

    @staticmethod
    def _locked(conn: Connection, serial: int, lease_id: str, worker: str | None) -> Job:
        """The job to finish, its run locked before anything of the job is written: the
        order every transition takes (run, then job), so that a finish and an obsolete of
        its run wait for each other instead of deadlocking on PostgreSQL."""
        job = job_rows.get_job(conn, serial)
        if job is None:
            raise NotFound(f"no job with serial {serial}", serial=serial)
        _check_holder(conn, serial, lease_id, worker)
        run_rows.lock_run(conn, job.run_id)
        return job

    @staticmethod
    def _finished_by(
        conn: Connection, serial: int, lease_id: str, state: JobState, **outcome: Any
    ) -> Job | None:
        """The job, if this lease already finished it with the same outcome (``state`` and
        the ``outputs`` or ``error`` recorded): the report is a repetition."""
        if job_rows.finished_by(conn, serial, lease_id) != state:
            return None
        job = job_rows.get_job(conn, serial)
        assert job is not None
        if any(getattr(job, name) != value for name, value in outcome.items()):
            return None
        return job

    def set_progress(
        self, serial: int, fraction: float | None, message: str, *, worker: str | None = None
    ) -> None:
        """What a running script reports about how far it is (shown in the UI)."""
        with self.store.write() as conn:
            job = job_rows.get_job(conn, serial)
            if worker is not None and job is not None and job.state == JobState.RUNNING:
                _refuse_other_worker(serial, job.worker, worker)
            progress = {"fraction": fraction, "message": message}
            if not job_rows.set_progress(conn, serial, progress):
                raise self._stale(conn, serial)

    def _append_log(self, conn: Connection, serial: int, lease_id: str, log: str) -> None:
        if log and not job_rows.append_log(conn, serial, lease_id, log, MAX_LOG_CHARS):
            raise self._stale(conn, serial)

    @staticmethod
    def _stale(conn: Connection, serial: int) -> RunyardError:
        job = job_rows.get_job(conn, serial)
        if job is None:
            return NotFound(f"no job with serial {serial}", serial=serial)
        return StaleLease(
            f"job {serial} is no longer held by this lease (it is {job.state}, attempt "
            f"{job.attempt}); stop working on it",
            serial=serial,
            state=job.state,
        )

    def report(
        self, results: list[dict[str, Any]], *, worker: str | None = None
    ) -> list[dict[str, Any]]:
        """Record several finished jobs (each ``{"serial", "lease", "ok", "outputs" | "error",
        "log", "workdir"}``), each in its own transaction: one refused report (a stale
        lease, another worker's job) does not undo the others. Per job: ``{"serial",
        "state"}`` or ``{"serial", "error": {...}}``."""
        answers: list[dict[str, Any]] = []
        for item in results:
            serial, lease = int(item["serial"]), str(item["lease"])
            try:
                if item.get("ok"):
                    job = self.complete(
                        serial,
                        lease,
                        item.get("outputs") or {},
                        item.get("log", ""),
                        worker=worker,
                    )
                else:
                    job = self.fail(
                        serial,
                        lease,
                        item.get("error", ""),
                        item.get("log", ""),
                        item.get("workdir", ""),
                        worker=worker,
                    )
            except RunyardError as exc:
                answers.append({"serial": serial} | exc.to_json())
                continue
            answers.append({"serial": serial, "state": job.state})
        return answers

    def heartbeats(
        self, beats: list[tuple[int, str, str]], *, worker: str | None = None
    ) -> list[int]:
        """Renew several leases (serial, lease, new log text) at once; the serials whose
        lease was refused (aborted, given back, expired, unknown, another worker's): their
        scripts must stop."""
        refused = []
        for serial, lease, log in beats:
            try:
                self.heartbeat(serial, lease, log, worker=worker)
            except (StaleLease, NotFound, Forbidden):
                refused.append(serial)
        return refused

    def release(self, serial: int, lease_id: str, *, worker: str | None = None) -> Job:
        """Give a job back (worker shutting down): Queued again, the attempt not counted."""
        with self._write_and_notify() as conn:
            job = job_rows.get_job(conn, serial)
            if job is None:
                raise NotFound(f"no job with serial {serial}", serial=serial)
            _check_holder(conn, serial, lease_id, worker)
            return self._give_back(conn, job, lease_id)

    def expire_leases(self) -> int:
        """Put jobs whose lease ran out back to Queued, or Failed after the attempt limit."""
        now = self.now()
        with self.store.read() as conn:
            expired = job_rows.expired_leases(conn, now)
        for serial, _ in expired:
            self._expire(serial, now)
        return len(expired)

    def _expire(self, serial: int, now: datetime) -> None:
        """Expire one job's lease, in its own transaction and in the order a finish locks:
        its run, its row, then the study run (a Failed job changes a reduce decision), so
        that it waits for an obsolete of its run or workflow instead of deadlocking with it
        on PostgreSQL. A job finished or given back since it was read is left as it is."""
        with self._write_and_notify() as conn:
            job = job_rows.get_job(conn, serial)
            if job is None:
                return
            run_rows.lock_run(conn, job.run_id)
            if job.attempt >= self.settings.max_attempts:
                values: dict[str, Any] = {
                    "error": f"the worker stopped answering (lease expired) in each of "
                    f"{job.attempt} attempts; giving up",
                    "finished_at": now,
                }
                target = JobState.FAILED
            else:  # queued again: no worker holds it
                values, target = {"worker_id": None}, JobState.QUEUED
            changed = job_rows.set_state(
                conn,
                serial,
                target,
                [JobState.RUNNING],
                expired_before=now,
                lease_id=None,
                **values,
            )
            if changed and target == JobState.FAILED:
                self._refresh_reduces(conn, job.workflow_id, [job.task_id])


def _check_holder(conn: Connection, serial: int, lease_id: str, worker: str | None) -> None:
    """Refuse a call made for ``worker`` (None: the admin, for any worker) on a job that
    another worker holds under ``lease_id``. A lease that is not the job's is left to the
    guarded update (``StaleLease``)."""
    if worker is not None:
        _refuse_other_worker(serial, job_rows.lease_holder(conn, serial, lease_id), worker)


def _refuse_other_worker(serial: int, holder: str | None, worker: str) -> None:
    if holder is not None and holder != worker:
        raise Forbidden(
            f"job {serial} is held by worker {holder}, not by {worker}: a worker token acts "
            f"only on the jobs its own worker has claimed",
            serial=serial,
            worker=worker,
            holder=holder,
        )
