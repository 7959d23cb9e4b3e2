"""The worker protocol: claims, heartbeats, completion, failure, release and lease expiry.

Every call carries the job's lease; a call with a lease that is no longer the job's current
one is refused (``StaleLease``, HTTP 409), so a worker that was cut off cannot overwrite a
newer attempt.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Connection

from runyard.errors import NotFound, RunyardError, StaleLease
from runyard.models import Job, Lease
from runyard.operations.jobs import MAX_LOG_CHARS, JobManager
from runyard.states import JobState
from runyard.store import jobs as job_rows
from runyard.store import task_types as task_type_rows
from runyard.store import workers as worker_rows
from runyard.store.jobs import storable
from runyard.validation import check_outputs


class LeaseManager(JobManager):
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

    def heartbeat(self, serial: int, lease_id: str, log: str = "") -> Lease:
        """Renew the lease (and add the script's new output to the job log)."""
        expires = self.now() + timedelta(seconds=self.settings.lease_seconds)
        with self.store.write() as conn:
            renewed = job_rows.renew_lease(conn, serial, lease_id, expires)
            if renewed and log:
                job_rows.append_log(conn, serial, lease_id, log, MAX_LOG_CHARS)
            if not renewed:
                raise self._stale(conn, serial)
            job = job_rows.get_job(conn, serial)
            assert job is not None
            return Lease(
                job_serial=serial, lease_id=lease_id, attempt=job.attempt, expires_at=expires
            )

    def complete(self, serial: int, lease_id: str, outputs: dict[str, Any], log: str = "") -> Job:
        """Record a job's outputs and its Done state, and create its followers, at once.
        Outputs that do not fit the interface fail the job instead. ``log`` is the output
        not sent with a heartbeat yet. The same call repeated (its answer was lost) is
        answered with the job as the first call left it, and records nothing."""
        with self._write_and_notify() as conn:
            job = job_rows.get_job(conn, serial)
            if job is None:
                raise NotFound(f"no job with serial {serial}", serial=serial)
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

    def fail(self, serial: int, lease_id: str, error: str, log: str = "", workdir: str = "") -> Job:
        """The script failed: its message, the rest of its log and the working folder that
        the worker kept for inspection. Repeated, as ``complete``."""
        with self._write_and_notify() as conn:
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

    def set_progress(self, serial: int, fraction: float | None, message: str) -> None:
        """What a running script reports about how far it is (shown in the UI)."""
        with self.store.write() as conn:
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

    def report(self, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Record several finished jobs (each ``{"serial", "lease", "ok", "outputs" | "error",
        "log", "workdir"}``), each in its own transaction: one refused report (a stale
        lease) does not undo the others. Per job: ``{"serial", "state"}`` or
        ``{"serial", "error": {...}}``."""
        answers: list[dict[str, Any]] = []
        for item in results:
            serial, lease = int(item["serial"]), str(item["lease"])
            try:
                if item.get("ok"):
                    job = self.complete(
                        serial, lease, item.get("outputs") or {}, item.get("log", "")
                    )
                else:
                    job = self.fail(
                        serial,
                        lease,
                        item.get("error", ""),
                        item.get("log", ""),
                        item.get("workdir", ""),
                    )
            except RunyardError as exc:
                answers.append({"serial": serial} | exc.to_json())
                continue
            answers.append({"serial": serial, "state": job.state})
        return answers

    def heartbeats(self, beats: list[tuple[int, str, str]]) -> list[int]:
        """Renew several leases (serial, lease, new log text) at once; the serials whose
        lease was refused (aborted, expired, unknown): their scripts must stop."""
        refused = []
        for serial, lease, log in beats:
            try:
                self.heartbeat(serial, lease, log)
            except (StaleLease, NotFound):
                refused.append(serial)
        return refused

    def release(self, serial: int, lease_id: str) -> Job:
        """Give a job back (worker shutting down): Queued again, the attempt not counted."""
        with self._write_and_notify() as conn:
            job = job_rows.get_job(conn, serial)
            attempt = max(0, (job.attempt if job else 1) - 1)
            return self._transition(
                conn,
                serial,
                JobState.QUEUED,
                held_lease=lease_id,
                attempt=attempt,
                started_at=None,
                lease_id=None,
                lease_expires_at=None,
                worker_id=None,
            )

    def expire_leases(self) -> int:
        """Put jobs whose lease ran out back to Queued, or Failed after the attempt limit."""
        now = self.now()
        with self.store.read() as conn:
            expired = job_rows.expired_leases(conn, now)
        if not expired:
            return 0
        with self._write_and_notify() as conn:
            for serial, attempt in expired:
                if attempt >= self.settings.max_attempts:
                    values: dict[str, Any] = {
                        "error": f"the worker stopped answering (lease expired) in each of "
                        f"{attempt} attempts; giving up",
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
                job = job_rows.get_job(conn, serial) if changed else None
                if job is not None and target == JobState.FAILED:
                    self._refresh_reduces(conn, job.workflow_id, [job.task_id])
        return len(expired)
