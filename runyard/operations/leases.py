"""The worker protocol: claims (``claims.py``), heartbeats, reports of finished jobs
(``reports.py``), release and lease expiry. ``LeaseManager`` is its operations, in layers:
``Claiming``, ``Reporting``, and here what keeps a lease or ends it without a result.

Every call carries the job's lease; a call with a lease that is no longer the job's current
one is refused (``StaleLease``, HTTP 409), so a worker that was cut off cannot overwrite a
newer attempt. A call made for a worker (``worker=``) acts only on that worker's jobs
(``Forbidden``, HTTP 403, for a job that another worker holds under that lease).

A heartbeat renews a lease and carries the script's new output; a job is given back by its
worker (``release``, see ``giveback.py``); a lease that ran out puts its job back to Queued
(``expire_leases``).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from runyard.errors import Forbidden, NotFound, RunyardError, StaleLease
from runyard.models import Job, Lease
from runyard.operations.claims import check_holder, refuse_other_worker
from runyard.operations.jobs import MAX_LOG_CHARS
from runyard.operations.reports import Reporting
from runyard.states import JobState
from runyard.store import jobs as job_rows
from runyard.store import leases as lease_rows
from runyard.store import runs as run_rows


class LeaseManager(Reporting):
    def heartbeat(
        self,
        serial: int,
        lease_id: str,
        log: str = "",
        *,
        worker: str | None = None,
        started: bool = False,
    ) -> Lease:
        """Renew the lease (and add the script's new output to the job log); ``started``:
        the worker says the job's script has started (until then the job is only claimed)."""
        with self.store.write() as conn:
            return self._heartbeat(conn, serial, lease_id, log, worker, started)

    def _heartbeat(
        self,
        conn: Connection,
        serial: int,
        lease_id: str,
        log: str,
        worker: str | None,
        started: bool = False,
    ) -> Lease:
        now = self.now()
        expires = now + timedelta(seconds=self.settings.lease_seconds)
        attempt = lease_rows.renew_lease(conn, serial, lease_id, expires, worker)
        if attempt is not None and log:
            lease_rows.append_log(conn, serial, lease_id, log, MAX_LOG_CHARS)
        if attempt is not None and started:
            lease_rows.mark_started(conn, serial, lease_id, now)
        if attempt is None:
            check_holder(conn, serial, lease_id, worker)  # why: another worker's job?
            raise self._stale(conn, serial)
        return Lease(job_serial=serial, lease_id=lease_id, attempt=attempt, expires_at=expires)

    def heartbeats(
        self,
        beats: list[tuple[int, str, str]],
        *,
        worker: str | None = None,
        started: Collection[int] = (),
    ) -> list[int]:
        """Renew several leases (serial, lease, new log text) at once, in one transaction;
        the serials whose lease was refused (aborted, given back, expired, unknown, another
        worker's): their scripts must stop. ``started``: the jobs whose scripts the worker
        says have started."""
        refused = []
        with self.store.write() as conn:
            for serial, lease, log in beats:
                try:
                    self._heartbeat(conn, serial, lease, log, worker, serial in started)
                except (StaleLease, NotFound, Forbidden):
                    refused.append(serial)
        return refused

    def set_progress(
        self, serial: int, fraction: float | None, message: str, *, worker: str | None = None
    ) -> None:
        """What a running script reports about how far it is (shown in the UI)."""
        with self.store.write() as conn:
            job = job_rows.get_job(conn, serial)
            if worker is not None and job is not None and job.state == JobState.RUNNING:
                refuse_other_worker(serial, job.worker, worker)
            progress = {"fraction": fraction, "message": message}
            if not lease_rows.set_progress(conn, serial, progress):
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

    def release(self, serial: int, lease_id: str, *, worker: str | None = None) -> Job:
        """Give a job back (worker shutting down): Queued again, the attempt not counted."""
        with self._write_and_notify() as conn:
            job = job_rows.get_job(conn, serial)
            if job is None:
                raise NotFound(f"no job with serial {serial}", serial=serial)
            check_holder(conn, serial, lease_id, worker)
            return self._give_back(conn, job, lease_id)

    def expire_leases(self) -> int:
        """Put jobs whose lease ran out back to Queued, or Failed after the attempt limit."""
        now = self.now()
        with self.store.read() as conn:
            expired = lease_rows.expired_leases(conn, now)
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
