"""Reports: a worker tells how its jobs ended, Done with their outputs or Failed with an
error (``complete``, ``fail``, or several at once with the claim of its next jobs in one
transaction: ``report``). Each result is one guarded update under the job's lease, then the
followers of a Done job, the retry of a failed one and the reduce decisions. A result under a
lease that is no longer the job's is refused (``StaleLease``, HTTP 409) and writes nothing; the
same result repeated (its answer was lost) is answered with the job as it is."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection

from runyard.errors import NotFound, RunyardError, StaleLease
from runyard.models import Job, Lease, TaskType, Worker
from runyard.operations.claims import Claiming, refuse_other_worker
from runyard.operations.jobs import MAX_LOG_CHARS
from runyard.states import JobState
from runyard.store import jobs as job_rows
from runyard.store import leases as lease_rows
from runyard.store import runs as run_rows
from runyard.store import task_types as task_type_rows
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


class Reporting(Claiming):
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
            refuse_other_worker(item.serial, job.worker, worker)
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
