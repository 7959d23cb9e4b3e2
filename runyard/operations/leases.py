"""The worker protocol: claims, heartbeats, completion, failure, release and lease expiry.

Every call carries the job's lease; a call with a lease that is no longer the job's current
one is refused (``StaleLease``, HTTP 409), so a worker that was cut off cannot overwrite a
newer attempt. A call made for a worker (``worker=``) acts only on that worker's jobs
(``Forbidden``, HTTP 403, for a job that another worker holds under that lease).

A worker's report of finished jobs is one transaction with the claim of its next jobs
(``report``); a job is given back by its worker (``release``, see ``giveback.py``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from runyard.errors import Forbidden, NotFound, RunyardError, StaleLease
from runyard.models import Capabilities, Job, Lease, TaskType, Worker
from runyard.operations.environments import EnvironmentManager
from runyard.operations.giveback import GivingBack
from runyard.operations.jobs import MAX_LOG_CHARS
from runyard.states import JobState
from runyard.store import jobs as job_rows
from runyard.store import leases as lease_rows
from runyard.store import runs as run_rows
from runyard.store import task_types as task_type_rows
from runyard.store import workers as worker_rows
from runyard.store.jobs import storable
from runyard.taskgraph import TaskGraph
from runyard.validation import check_outputs


@dataclass(frozen=True, kw_only=True)
class Finished:
    """A job's end as its worker reports it: Done with ``outputs``, or Failed with ``error``
    (and the working folder kept for inspection); ``log``: the output not sent yet."""

    serial: int
    lease: str
    ok: bool
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    log: str = ""
    workdir: str = ""

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Finished:
        return cls(
            serial=int(item["serial"]),
            lease=str(item["lease"]),
            ok=bool(item.get("ok")),
            outputs=item.get("outputs") or {},
            error=item.get("error", ""),
            log=item.get("log", ""),
            workdir=item.get("workdir", ""),
        )


class LeaseManager(GivingBack):
    def __init__(self, *args: Any, environments: EnvironmentManager, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.environments = environments
        # What claims look up again and again: the task types a worker can run (by what it
        # provides, has installed or may install; checked against the catalog of task types
        # and dependency packages), and the names of workers by id (a worker keeps its name).
        self._runnable: dict[Capabilities, tuple[tuple[int, ...], list[int] | None]] = {}
        self._worker_names: dict[int, str] = {}

    def claim(
        self,
        worker_id: int,
        provides: list[str] | Capabilities,
        limit: int,
        *,
        cap: int | None = None,
    ) -> list[tuple[Job, Lease]]:
        """Claim up to ``limit`` jobs that a worker can run (``provides``: the names of the
        dependency packages it provides, or all it can do, ``Worker.capabilities``); with
        ``cap`` (an admin's limit), never more than ``cap`` Running at once."""
        can = provides if isinstance(provides, Capabilities) else Capabilities(frozenset(provides))
        # Look first without the write lock: most claims of a waiting worker find nothing.
        with self.store.read() as conn:
            if cap is not None:
                limit = min(limit, cap - self._held(conn, worker_id))
            if limit <= 0 or not lease_rows.any_claimable(conn, self._runnable_ids(conn, can)):
                return []
        with self.store.write() as conn:
            return self._claim(conn, worker_id, can, limit, cap)

    def _claim(
        self, conn: Connection, worker_id: int, can: Capabilities, limit: int, cap: int | None
    ) -> list[tuple[Job, Lease]]:
        if cap is not None:
            limit = min(limit, cap - self._held(conn, worker_id))
        if limit <= 0:
            return []
        return lease_rows.claim(
            conn,
            task_type_ids=self._runnable_ids(conn, can),
            worker_id=worker_id,
            worker_name=self._worker_name(conn, worker_id),
            limit=limit,
            lease_seconds=self.settings.lease_seconds,
            now=self.now(),
        )

    @staticmethod
    def _held(conn: Connection, worker_id: int) -> int:
        return len(worker_rows.running_jobs(conn, worker_id).get(worker_id, []))

    def _runnable_ids(self, conn: Connection, can: Capabilities) -> list[int] | None:
        """The task types a worker that ``can`` may run; None: all of them."""
        installed = self.environments.catalog_version(conn)
        cached = self._runnable.get(can)
        if cached is not None and cached[0] == installed:
            return cached[1]
        ids, every = self.environments.runnable_ids(conn, can)
        runnable = None if every else ids
        self._runnable[can] = (installed, runnable)
        return runnable

    def _worker_name(self, conn: Connection, worker_id: int) -> str:
        name = self._worker_names.get(worker_id)
        if name is None:
            name = self._worker_names[worker_id] = worker_rows.name_of(conn, worker_id) or "?"
        return name

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
            _check_holder(conn, serial, lease_id, worker)  # why: another worker's job?
            raise self._stale(conn, serial)
        return Lease(job_serial=serial, lease_id=lease_id, attempt=attempt, expires_at=expires)

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
        done = Finished(serial=serial, lease=lease_id, ok=True, outputs=outputs, log=log)
        return self._finish_one(done, worker)

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
        failed = Finished(
            serial=serial, lease=lease_id, ok=False, error=error, log=log, workdir=workdir
        )
        return self._finish_one(failed, worker)

    def _finish_one(self, item: Finished, worker: str | None) -> Job:
        with self._write_and_notify() as conn:
            found = lease_rows.jobs_with_leases(conn, [item.serial])
            run_rows.lock_runs(conn, [job.run_id for job, _ in found.values()])
            return self._finish(conn, item, found.get(item.serial), worker, {})

    def report(
        self,
        results: list[dict[str, Any]],
        *,
        worker: str | None = None,
        claim: Worker | None = None,
        limit: int = 0,
    ) -> tuple[list[dict[str, Any]], list[tuple[Job, Lease]]]:
        """Record several finished jobs (each ``{"serial", "lease", "ok", "outputs" | "error",
        "log", "workdir"}``) and claim up to ``limit`` jobs for ``claim``, in one
        transaction. A refused result (a stale lease, another worker's job) writes nothing
        and does not undo the others. Per job: ``{"serial", "state"}`` or ``{"serial",
        "error": {...}}``; and the jobs claimed."""
        items = [Finished.from_item(item) for item in results]
        if not items:  # a claim alone: looked for without the write lock first
            if claim is None or limit <= 0:
                return [], []
            can = claim.capabilities()
            return [], self.claim(claim.id, can, limit, cap=claim.max_jobs_limit)
        answers: list[dict[str, Any]] = []
        made: list[int] = []  # the followers created
        with self.store.write() as conn:
            found = lease_rows.jobs_with_leases(conn, [item.serial for item in items])
            # The lock order of every finish: the runs (in id order), the jobs, the study run.
            run_rows.lock_runs(conn, [job.run_id for job, _ in found.values()])
            graphs: dict[int, TaskGraph] = {}
            for item in items:
                try:
                    job = self._finish(conn, item, found.get(item.serial), worker, graphs, made)
                except RunyardError as exc:
                    answers.append({"serial": item.serial} | exc.to_json())
                    continue
                answers.append({"serial": item.serial, "state": job.state})
            claimed = (
                self._claim(conn, claim.id, claim.capabilities(), limit, claim.max_jobs_limit)
                if claim is not None and limit > 0
                else []
            )
        # Wake the claims waiting elsewhere only if this left new work unclaimed: a follower
        # this report did not claim itself, or a reduce decision (it may queue a job).
        unclaimed = set(made) - {job.serial for job, _ in claimed}
        if unclaimed or any(graph.reduces for graph in graphs.values()):
            self.changed.notify()
        return answers, claimed

    def _finish(
        self,
        conn: Connection,
        item: Finished,
        found: tuple[Job, str] | None,
        worker: str | None,
        graphs: dict[int, TaskGraph],
        made: list[int] | None = None,
    ) -> Job:
        """Record one finished job (its run locked already): one guarded update under its
        lease, then its followers (their serials added to ``made``) and the reduce
        decisions. Refused (``StaleLease``, ``Forbidden``, ``NotFound``) before anything is
        written; a repeated report of the same outcome under the same lease is answered with
        the job as it is."""
        if found is None:
            raise NotFound(f"no job with serial {item.serial}", serial=item.serial)
        job, current_lease = found
        if worker is not None and current_lease == item.lease:
            _refuse_other_worker(item.serial, job.worker, worker)
        graph = graphs.get(job.workflow_id)
        if graph is None:
            graph = graphs[job.workflow_id] = self._graph(conn, job.workflow_id)
        problem = ""
        if item.ok:
            problem = check_outputs(self._task_type_of(conn, job, graph), item.outputs) or ""
        now = self.now()
        common: dict[str, Any] = {"log": item.log, "log_limit": MAX_LOG_CHARS, "now": now}
        # ``outcome``: what a repeated report must match; the job record gets it too.
        outcome: dict[str, Any]
        written: dict[str, Any]
        if item.ok and not problem:
            state, outcome = JobState.DONE, {"outputs": item.outputs}
            recorded = lease_rows.finish(
                conn, item.serial, item.lease, outputs=item.outputs, **common
            )
            written = outcome | {"error": ""}
        else:
            error = storable(problem or item.error or "failed")
            state, outcome = JobState.FAILED, {"error": error}
            workdir = "" if item.ok else item.workdir
            recorded = lease_rows.finish(
                conn, item.serial, item.lease, error=error, workdir=workdir, **common
            )
            written = outcome | {"workdir": workdir}
        if not recorded:
            return self._repeated(conn, item, state, outcome)
        finished = replace(job, state=state, finished_at=now, **written)
        if state == JobState.DONE:
            created = self._create_followers(conn, finished, graph)
            if made is not None:
                made.extend(created)
        elif (retried := self._retry(conn, finished, graph)) is not None:
            if made is not None:
                made.append(retried.serial)
            return finished  # the retry decided the reduces again
        self._refresh_reduces(conn, job.workflow_id, [job.task_id], graph=graph)
        return finished

    def _retry(self, conn: Connection, failed: Job, graph: TaskGraph) -> Job | None:
        """Restart a job whose script failed as a new job, if its task type's ``retries``
        allow another (``metadata["retry"]``: the retries before it); the new job, or None
        (no retry left, or the restart refused: it stays Failed as it is)."""
        retries = self._task_type_of(conn, failed, graph).retries
        before = failed.metadata.get("retry", 0)
        if not isinstance(before, int) or before >= retries:
            return None
        try:
            with conn.begin_nested():
                return self._restart(conn, failed, "system", retry=(before + 1, retries))
        except RunyardError:
            return None

    def _task_type_of(self, conn: Connection, job: Job, graph: TaskGraph) -> TaskType:
        """The task type a job was made with (its task's, unless the task changed type)."""
        task = graph.by_id.get(job.task_id)
        if task is not None and task.task_type.id == job.task_type_id:
            return task.task_type
        found = task_type_rows.get(conn, job.task_type_id)
        assert found is not None
        return found

    def _repeated(
        self, conn: Connection, item: Finished, state: JobState, outcome: dict[str, Any]
    ) -> Job:
        """A report the guarded update refused: the job as it is if this lease already
        finished it the same way (the worker lost the first answer), else ``StaleLease``."""
        if lease_rows.finished_by(conn, item.serial, item.lease) == state:
            job = job_rows.get_job(conn, item.serial)
            assert job is not None
            if all(getattr(job, name) == value for name, value in outcome.items()):
                return job
        current = job_rows.get_job(conn, item.serial)
        assert current is not None
        raise StaleLease(
            f"job {item.serial} is no longer held by this lease (it is {current.state}, "
            f"attempt {current.attempt}); its result was not recorded",
            serial=item.serial,
            state=current.state,
        )

    def set_progress(
        self, serial: int, fraction: float | None, message: str, *, worker: str | None = None
    ) -> None:
        """What a running script reports about how far it is (shown in the UI)."""
        with self.store.write() as conn:
            job = job_rows.get_job(conn, serial)
            if worker is not None and job is not None and job.state == JobState.RUNNING:
                _refuse_other_worker(serial, job.worker, worker)
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


def _check_holder(conn: Connection, serial: int, lease_id: str, worker: str | None) -> None:
    """Refuse a call made for ``worker`` (None: the admin, for any worker) on a job that
    another worker holds under ``lease_id``. A lease that is not the job's is left to the
    guarded update (``StaleLease``)."""
    if worker is not None:
        _refuse_other_worker(serial, lease_rows.lease_holder(conn, serial, lease_id), worker)


def _refuse_other_worker(serial: int, holder: str | None, worker: str) -> None:
    if holder is not None and holder != worker:
        raise Forbidden(
            f"job {serial} is held by worker {holder}, not by {worker}: a worker token acts "
            f"only on the jobs its own worker has claimed",
            serial=serial,
            worker=worker,
            holder=holder,
        )
