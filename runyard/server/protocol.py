"""HTTP handlers of the worker protocol: register, claim, report, heartbeat, complete, fail,
release. Every call but registration and claims carries the job's lease; a worker token acts
only as its own worker, and only on the jobs that worker holds."""

from __future__ import annotations

import time
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from runyard.errors import Forbidden
from runyard.models import Job, Lease, TaskType, Worker
from runyard.operations import Principal, Runyard
from runyard.server import schemas as s
from runyard.server.deps import Caller, Ry, require

# -- the worker protocol ----------------------------------------------------------------------


def require_worker(caller: Principal, name: str) -> None:
    """An admin or worker token; a worker token speaks only for its own worker (the name it
    was created for), an admin token for any (the local worker of ``runyard up``)."""
    require(caller, "admin", "worker")
    if caller.kind == "worker" and caller.name != name:
        raise Forbidden(
            f"this is the worker token of {caller.name}; it may not act as worker {name!r}: "
            f"start the worker with --name {caller.name}, or create a token for {name} "
            f"(runyard token create-worker {name})",
            worker=name,
            token_worker=caller.name,
        )


def acting_worker(caller: Principal) -> str | None:
    """The worker whose jobs a call on one job may touch: a worker token's own; None for the
    admin token (any worker's)."""
    return caller.name if caller.kind == "worker" else None


def register_worker(body: s.WorkerRegistration, ry: Ry, caller: Caller) -> dict[str, Any]:
    require_worker(caller, body.name)
    worker = ry.workers.register(
        body.name,
        provides=body.provides,
        max_jobs=body.max_jobs,
        version=body.version,
        installs=body.installs,
        holds=body.holds,
    )
    return s.worker_json(worker)


async def claim_jobs(
    body: s.ClaimRequest, request: Request, ry: Ry, caller: Caller
) -> JSONResponse:
    """Claim up to ``max`` jobs; wait up to ``wait`` seconds for one (long poll). A worker
    that went away while waiting gets nothing: jobs claimed for it are given back at once."""
    require_worker(caller, body.worker)
    await run_in_threadpool(ry.workers.seen, body.worker)
    worker = await run_in_threadpool(ry.workers.get, body.worker)
    deadline = time.monotonic() + body.wait
    while True:
        seen = ry.changed.version
        if await request.is_disconnected():
            return JSONResponse([])
        claimed = await run_in_threadpool(
            ry.leases.claim, worker.id, worker.capabilities(), body.max, cap=worker.max_jobs_limit
        )
        remaining = deadline - time.monotonic()
        if claimed or remaining <= 0 or body.max == 0 or ry.changed.closed:
            break
        await run_in_threadpool(ry.changed.wait, seen, min(remaining, 0.5))
    if await request.is_disconnected():
        for job, lease in claimed:
            await run_in_threadpool(ry.leases.release, job.serial, lease.lease_id)
        return JSONResponse([])
    return JSONResponse(await run_in_threadpool(_claimed_json, ry, claimed, worker))


def _claimed_json(
    ry: Runyard, claimed: list[tuple[Job, Lease]], worker: Worker
) -> list[dict[str, Any]]:
    """What a worker gets for each claimed job: the job, its lease, a token for the
    script, the task type (to fetch and start its script) and the environment of dependency
    packages it runs in (null: the worker's own)."""
    if not claimed:
        return []
    plans = ry.environments.plans((job.task_type_id for job, _ in claimed), worker.provides)
    return [
        {
            "job": s.job_json(job),
            "lease": s.lease_json(lease),
            "token": ry.auth.job_token(job.serial, lease.lease_id),
            "task_type": _task_type_json(ry.task_types.get_by_id(job.task_type_id)),
            "environment": plans[job.task_type_id].json(),
        }
        for job, lease in claimed
    ]


_TASK_TYPES_JSON: dict[int, tuple[TaskType, dict[str, Any]]] = {}


def _task_type_json(task_type: TaskType) -> dict[str, Any]:
    """``task_type_json``, made once per task type record (installed task types never
    change, and the task type manager hands out the same record each time)."""
    cached = _TASK_TYPES_JSON.get(id(task_type))
    if cached is None or cached[0] is not task_type:
        if len(_TASK_TYPES_JSON) > 1000:  # records of installations closed since (tests)
            _TASK_TYPES_JSON.clear()
        cached = _TASK_TYPES_JSON[id(task_type)] = (task_type, s.task_type_json(task_type))
    return cached[1]


def worker_report(body: s.WorkerReport, ry: Ry, caller: Caller) -> JSONResponse:
    """Record finished jobs and claim up to ``claim`` more, in one round trip: ``results``
    per reported job (its new state, or the error that refused it) and ``claimed``."""
    require_worker(caller, body.worker)
    ry.workers.seen(body.worker)
    worker = ry.workers.get(body.worker)
    results, claimed = ry.leases.report(
        [r.model_dump() for r in body.results],
        worker=body.worker,
        claim=worker if body.claim else None,
        limit=body.claim,
    )
    # Plain JSON already: answered as it is (FastAPI's encoder would walk it again).
    return JSONResponse({"results": results, "claimed": _claimed_json(ry, claimed, worker)})


def worker_heartbeat(body: s.WorkerHeartbeat, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Renew the leases of all of a worker's jobs (with their new log text); ``refused``:
    the jobs the worker must stop (aborted, or given to another worker); ``install``: the
    environments an admin asked it to make (``{"key", "packages"}``)."""
    require_worker(caller, body.worker)
    ry.workers.seen(body.worker)
    beats = [(b.serial, b.lease, b.log) for b in body.beats]
    started = [b.serial for b in body.beats if b.started]  # scripts started: not claimed only
    refused = ry.leases.heartbeats(beats, worker=body.worker, started=started) if beats else []
    return {"refused": refused, "install": ry.environments.requested(body.worker)}


def heartbeat(serial: s.Int32, body: s.Heartbeat, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Renew a job's lease, adding the script's new output to the job log."""
    require(caller, "admin", "worker")
    worker = acting_worker(caller)
    lease = ry.leases.heartbeat(serial, body.lease, body.log, worker=worker, started=body.started)
    return s.lease_json(lease)


def complete_job(serial: s.Int32, body: s.Completion, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Record a job's outputs: Done, with its followers created."""
    require(caller, "admin", "worker")
    worker = acting_worker(caller)
    return s.job_json(ry.leases.complete(serial, body.lease, body.outputs, body.log, worker=worker))


def fail_job(serial: s.Int32, body: s.Failure, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Record a job's failure: its message, the rest of its log, its kept working folder."""
    require(caller, "admin", "worker")
    worker = acting_worker(caller)
    return s.job_json(
        ry.leases.fail(serial, body.lease, body.error, body.log, body.workdir, worker=worker)
    )


def release_job(serial: s.Int32, body: s.LeaseBody, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Give a job back: Queued again for any worker, the attempt not counted."""
    require(caller, "admin", "worker")
    return s.job_json(ry.leases.release(serial, body.lease, worker=acting_worker(caller)))


# -- environments of dependency packages -------------------------------------------------------


def environment_news(body: s.EnvironmentNews, ry: Ry, caller: Caller) -> dict[str, Any]:
    """A worker's news about one of its environments: Installing, Ready or Failed (with the
    install log). A Failed environment's jobs are not claimed by that worker again."""
    require_worker(caller, body.worker)
    ry.environments.record(
        body.worker, body.key, [p.model_dump() for p in body.packages], body.state, body.log
    )
    ry.workers.forget(body.worker)
    return {"worker": body.worker, "key": body.key, "state": body.state}


def environment_plan(body: s.EnvironmentRequest, ry: Ry, caller: Caller) -> dict[str, Any]:
    """The environment a worker would make for the dependency packages named (each of its
    dependencies after it; the newest version if none is given): ``runyard worker install``."""
    require_worker(caller, body.worker)
    worker = ry.workers.get(body.worker)
    wanted = [p.dependency() for p in body.packages]
    plan = ry.environments.plan_for_packages(wanted, worker.provides)
    return {"environment": plan.json(), "missing": list(plan.missing)}
