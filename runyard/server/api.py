"""HTTP handlers: parse, make one call to the operations layer, render."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated, Any, cast
from urllib.parse import quote

from fastapi import Header, Query, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from runyard.errors import InvalidInput, NotFound
from runyard.models import Entity
from runyard.operations import Principal, Runyard
from runyard.operations.restarts import RestartChoice
from runyard.operations.spawn_batch import JobSpawn, StateChange
from runyard.packages import (
    DependencyPackage,
    TaskTypePackage,
    WorkflowPackage,
    folder_zip,
    parse_package,
    read_package_stream,
)
from runyard.server import schemas as s
from runyard.server.deps import Caller, Ry, require, require_job_access
from runyard.server.protocol import require_worker

MAX_PACKAGE_BYTES = 512 * 1024 * 1024
SPOOL_BYTES = 8 * 1024 * 1024  # an upload larger than this goes to a temporary file
ZIP_CHUNK = 1024 * 1024


# -- task types and packages --------------------------------------------------------------


async def import_package(request: Request, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Import a package (.xfp zip in the request body): task type, workflow or dependency
    package."""
    require(caller, "user")
    name = Path(request.query_params.get("filename", "upload.xfp")).name
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_PACKAGE_BYTES:
        raise InvalidInput(_too_large(name))
    # Spooled to a temporary file past SPOOL_BYTES: a large upload is not held in memory.
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as body:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_PACKAGE_BYTES:
                raise InvalidInput(_too_large(name))
            await run_in_threadpool(body.write, chunk)
        if not size:
            raise InvalidInput("the request body is empty; send the package as a zip (.xfp)")
        body.seek(0)
        stream = cast(IO[bytes], body)
        package = await run_in_threadpool(lambda: parse_package(read_package_stream(stream, name)))
        if isinstance(package, DependencyPackage):
            require(caller, "admin")
        return await run_in_threadpool(_install, ry, package, caller)


def _too_large(name: str) -> str:
    return f"{name}: the package is larger than {MAX_PACKAGE_BYTES // (1024 * 1024)} MiB"


def _install(
    ry: Runyard, package: TaskTypePackage | WorkflowPackage | DependencyPackage, caller: Principal
) -> dict[str, Any]:
    if isinstance(package, TaskTypePackage):
        tt, new = ry.task_types.install(package, actor=caller.name)
        return {"kind": "task_type", "installed": new, "task_type": s.task_type_json(tt)}
    if isinstance(package, WorkflowPackage):
        workflow = ry.workflows.import_package(package, actor=caller.name, owner=caller.user_id)
        return {"kind": "workflow", "installed": True, "workflow": s.workflow_json(workflow)}
    imported, new = ry.dependency_packages.import_package(package, actor=caller.name)
    return {
        "kind": "dependency",
        "installed": new,
        "dependency_package": s.dependency_package_json(imported),
    }


def list_dependency_packages(ry: Ry, caller: Caller) -> list[dict[str, Any]]:
    """All imported dependency packages, every version (``install`` null: a virtual marker)."""
    return [s.dependency_package_json(p) for p in ry.dependency_packages.list_all()]


def list_task_types(ry: Ry, caller: Caller) -> list[dict[str, Any]]:
    return [s.task_type_json(tt) for tt in ry.task_types.list_all()]


def find_task_type(name: str, ry: Ry, caller: Caller) -> list[dict[str, Any]]:
    """All installed versions of a task type, newest first, each with its documentation
    (remarks, author, description, CITATION.cff and readme of its package)."""
    return [
        s.task_type_json(tt)
        | {"documentation": s.documentation_json(ry.task_types.documentation(tt))}
        for tt in ry.task_types.find(name)
    ]


def dependency_package(name: str, version: str, ry: Ry, caller: Caller) -> Response:
    """The files of a dependency package version, as a zip (workers install from them)."""
    require(caller, "admin", "worker")
    found = ry.dependency_packages.find(name, version)
    if not found:
        raise NotFound(
            f"dependency package {name} {version} is not imported", name=name, version=version
        )
    return _zip_response(Path(found[0].path))


def task_type_package(name: str, version: str, ry: Ry, caller: Caller) -> Response:
    """The installed files of a task type version, as a zip (workers fetch scripts here)."""
    require(caller, "admin", "worker")
    found = ry.task_types.find(name, version)
    if not found:
        raise InvalidInput(f"task type {name} {version} is not installed")
    return _zip_response(Path(found[0].path))


def _zip_response(folder: Path) -> StreamingResponse:
    """An installed package folder zipped into a temporary file, streamed from there (a
    large package is never held in memory)."""
    zipped = folder_zip(folder)
    size = os.fstat(zipped.fileno()).st_size

    def chunks() -> Iterator[bytes]:
        with zipped:
            while chunk := zipped.read(ZIP_CHUNK):
                yield chunk

    return StreamingResponse(
        chunks(), media_type="application/zip", headers={"content-length": str(size)}
    )


# -- workflows ------------------------------------------------------------------------------


def list_workflows(ry: Ry, caller: Caller) -> list[dict[str, Any]]:
    """The workflows the caller may see (an admin: all), each with the caller's level on it
    (view, operate, edit or own)."""
    visible = ry.access.visible(caller)
    owners = ry.access.owners()
    return [
        s.workflow_json(item["workflow"])
        | {
            "runs": item["runs"],
            "jobs": item["jobs"],
            "owner": owners.get(item["workflow"].id),
            "your_level": "own" if visible is None else visible[item["workflow"].id],
        }
        for item in ry.workflows.list_all()
        if visible is None or item["workflow"].id in visible
    ]


def get_workflow(name: str, ry: Ry, caller: Caller) -> dict[str, Any]:
    ry.access.workflow(caller, name)
    workflow, tasks = ry.workflows.get(name)
    return s.workflow_json(workflow) | {
        "tasks": [
            {
                "name": t.name,
                "task_type": {"name": t.task_type.name, "version": t.task_type.version},
                "inputs": [{"key": i.key, "source": s.source_json(i.source)} for i in t.inputs],
            }
            for t in tasks
        ],
        "layout": ry.workflows.layout(name),
    }


def workflow_action(name: str, action: str, ry: Ry, caller: Caller) -> dict[str, Any]:
    """start | stop | obsolete | lock | unlock"""
    if action in ("lock", "unlock"):
        require(caller, "admin")
    ry.access.workflow(caller, name, "edit")
    states = {"start": "Started", "stop": "Draft", "obsolete": "Obsolete"}
    if action in states:
        workflow = ry.workflows.set_state(name, states[action], actor=caller.name)
    elif action in ("lock", "unlock"):
        workflow = ry.workflows.set_locked(name, action == "lock", actor=caller.name)
    else:
        raise InvalidInput(
            f"unknown workflow action {action!r}; use start, stop, obsolete, lock or unlock"
        )
    if action == "start":
        ry.changed.notify()
    return s.workflow_json(workflow)


def _attachment(filename: str) -> str:
    """A Content-Disposition header for a download named ``filename`` (RFC 6266): the
    name in UTF-8, and a plain ASCII one for clients that cannot read that."""
    plain = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename
    )
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


def export_workflow(name: str, ry: Ry, caller: Caller) -> Response:
    ry.access.workflow(caller, name)
    data = ry.workflows.export_package(name)
    return Response(
        data,
        media_type="application/zip",
        headers={"content-disposition": _attachment(f"{name}.xfp")},
    )


def workflow_status(name: str, ry: Ry, caller: Caller) -> dict[str, Any]:
    ry.access.workflow(caller, name)
    return ry.workflows.status(name)


def new_run(
    name: str,
    body: s.NewRun,
    ry: Ry,
    caller: Caller,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """Start a run at a source task. With an ``Idempotency-Key`` header, the same request
    sent again (its answer lost) is answered the run's job created the first time."""
    require(caller, "user")
    ry.access.workflow(caller, name, "operate")
    entity = Entity(**body.entity.model_dump()) if body.entity else None
    if idempotency_key is None:
        job = ry.jobs.new_run(
            name, body.task, outputs=body.outputs, name=body.name, entity=entity, actor=caller.name
        )
    else:
        job = ry.runs.new_run_once(
            idempotency_key,
            f"{caller.kind}:{caller.name}",
            name,
            body.task,
            outputs=body.outputs,
            name=body.name,
            entity=entity,
            actor=caller.name,
        )
    return s.job_json(job)


def set_run_priority(run_id: s.Int32, body: s.Priority, ry: Ry, caller: Caller) -> dict[str, Any]:
    require(caller, "user")
    ry.access.run(caller, run_id, "operate")
    ry.jobs.set_priority(run_id, body.priority, actor=caller.name)
    return {"run": run_id, "priority": body.priority}


# -- jobs -------------------------------------------------------------------------------------


def job_log(serial: s.Int32, ry: Ry, caller: Caller, offset: int = 0) -> PlainTextResponse:
    """The job's log (script output) from character ``offset`` on."""
    require_job_access(caller, serial)
    ry.access.job(caller, serial)
    return PlainTextResponse(ry.jobs.log(serial, max(0, offset)))


def job_progress(serial: s.Int32, body: s.Progress, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Report how far a running job is (fraction 0..1 and a message)."""
    require(caller, "job", "worker", "admin")
    require_job_access(caller, serial)
    worker = caller.name if caller.kind == "worker" else None  # its own worker's jobs only
    ry.leases.set_progress(serial, body.fraction, body.message, worker=worker)
    return {"serial": serial, "fraction": body.fraction, "message": body.message}


def job_activity(
    serial: s.Int32, body: s.ActivityMessage, ry: Ry, caller: Caller
) -> dict[str, Any]:
    """Write an entry in the activity log on behalf of a job."""
    require(caller, "job", "admin")
    require_job_access(caller, serial)
    ry.jobs.log_activity(serial, body.message, body.level)
    return {"serial": serial, "message": body.message, "level": body.level}


def change_job_state(
    serial: s.Int32, body: s.JobStateChange, ry: Ry, caller: Caller
) -> dict[str, Any]:
    require(caller, "user", "job")
    require_job_access(caller, serial)
    ry.access.job(caller, serial, "operate")
    return s.job_json(ry.jobs.update_state(serial, body.state, actor=caller.name))


def restart_job(serial: s.Int32, ry: Ry, caller: Caller) -> dict[str, Any]:
    require(caller, "user")
    ry.access.job(caller, serial, "operate")
    return s.job_json(ry.jobs.restart_new_job(serial, actor=caller.name))


def restart_jobs(name: str, body: s.JobRestarts, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Restart many jobs of a workflow at once: ``serials``, or a ``filter`` by states
    (required), tasks and runs; at most 10,000, in one transaction. Answers ``restarted``
    (``serial``, ``new_serial``, ``state``) and ``skipped`` (``serial``, ``reason``)."""
    require(caller, "user")
    ry.access.workflow(caller, name, "operate")
    chosen = None if body.filter is None else body.filter.model_dump()
    choice = RestartChoice.of(body.serials, chosen)
    return ry.jobs.restart_jobs(name, choice, actor=caller.name)


# -- spawning (with the spawning job's token) ------------------------------------------------


def _spawner(caller: Principal) -> int:
    require(caller, "job")
    assert caller.job_serial is not None
    return caller.job_serial


def spawn_task(body: s.SpawnTask, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Spawn a task in the job's workflow, or answer the one its task spawned before with
    the same ``spawn_key`` (default: the name)."""
    task, key = ry.spawns.spawn_task(
        _spawner(caller),
        task_type_name=body.task_type.name,
        task_type_version=body.task_type.version,
        name=body.name,
        spawn_key=body.spawn_key,
        inputs=[i.model_dump() for i in body.inputs],
    )
    return s.task_json(task, key)


def spawn_jobs(body: s.SpawnJobsBody, ry: Ry, caller: Caller) -> list[dict[str, Any]]:
    """Spawn a batch of jobs (at most 10,000) in one transaction: each starts a new run, or
    joins the run of ``source_job_serial``. Jobs spawned before by this job with the same
    content are answered as they are (a retried job spawns nothing twice). Answers, per
    job: ``serial``, ``run_id``, ``task_id``, ``state``, ``spawned_by_job``."""
    spawns = [_job_spawn(item) for item in s.spawn_job_items(body)]
    return [s.spawned_job_json(job) for job in ry.spawns.spawn_jobs(_spawner(caller), spawns)]


def reserve_serials(body: s.SerialReservation, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Reserve serials for the jobs this job will spawn (``serial`` in POST
    /api/spawn/batch): ``ranges`` of ``[first, last]``, and ``fresh``: whether the job has
    spawned nothing yet (only then may a script be told serials before sending its jobs)."""
    ranges, fresh = ry.spawns.reserve_serials(_spawner(caller), body.count)
    return {"ranges": [list(r) for r in ranges], "fresh": fresh}


def spawn_keys(
    ry: Ry, caller: Caller, after: s.Int32 = 0, limit: s.Int32 = 10_000
) -> list[list[Any]]:
    """The jobs this job spawned before (a retried job: its earlier attempts), as ``[key,
    serial]`` in serial order, ``limit`` (at most 10,000) from the first serial above
    ``after``; the key is ``runyard.spawnkeys.spawn_key`` of what was spawned."""
    return [[key, serial] for key, serial in ry.spawns.spawn_keys(_spawner(caller), after, limit)]


def spawn_batch(body: s.SpawnBatch, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Spawn jobs and change spawned jobs' states in one transaction, in the order of the
    script's calls (a state change comes after its first ``after`` jobs); jobs may carry
    reserved serials, and later items name them. Answers ``jobs`` (as POST
    /api/spawn/jobs) and ``states`` (each changed job as it is at the end, in the same
    shape)."""
    spawns = [_job_spawn(item) for item in s.spawn_job_items({"jobs": body.jobs})]
    changes = [StateChange(**c.model_dump()) for c in body.states]
    jobs, changed = ry.spawns.spawn_batch(_spawner(caller), spawns, changes)
    return {
        "jobs": [s.spawned_job_json(job) for job in jobs],
        "states": [s.spawned_job_json(job) for job in changed],
    }


def _job_spawn(item: dict[str, Any]) -> JobSpawn:
    fields = dict(item)
    return JobSpawn(task_id=fields.pop("task"), **fields)


def change_spawned_job_state(
    serial: s.Int32, body: s.JobStateChange, ry: Ry, caller: Caller
) -> dict[str, Any]:
    """Change the state of a job this job spawned (Obsolete -> Done creates its followers)."""
    return s.job_json(ry.spawns.set_spawned_state(_spawner(caller), serial, body.state))


def change_spawned_job_states(
    body: s.SpawnedStates, ry: Ry, caller: Caller
) -> list[dict[str, Any]]:
    """Change the state of many jobs this job spawned, in one transaction."""
    jobs = ry.spawns.set_spawned_states(_spawner(caller), body.serials, body.state)
    return [s.job_json(job) for job in jobs]


def spawn_sort_orders(ry: Ry, caller: Caller) -> list[str]:
    """The sort orders of the runs of the job's workflow, in order."""
    return ry.spawns.sort_orders(_spawner(caller))


# -- admin ------------------------------------------------------------------------------------


def create_worker_token(body: s.WorkerTokenRequest, ry: Ry, caller: Caller) -> dict[str, str]:
    require(caller, "admin")
    return {"name": body.name, "token": ry.auth.create_worker_token(body.name, actor=caller.name)}


def list_workers(ry: Ry, caller: Caller) -> list[dict[str, Any]]:
    """Every worker with what it provides, its job slots, an admin's limit, its Running jobs."""
    require(caller, "admin")
    running = ry.workers.running()
    return [s.worker_json(w, running.get(w.id)) for w in ry.workers.list_all()]


def limit_worker(name: str, body: s.WorkerLimit, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Limit a worker's concurrent jobs (``{"max_jobs": N}``; null lifts the limit)."""
    require(caller, "admin")
    return s.worker_json(ry.workers.set_limit(name, body.max_jobs, actor=caller.name))


def allow_worker_installs(
    name: str, body: s.WorkerInstalls, ry: Ry, caller: Caller
) -> dict[str, Any]:
    """Let a worker install dependency packages when its jobs need them, or forbid it
    (``{"allowed": false}``); it installs only if it was also started to."""
    require(caller, "admin")
    ry.environments.set_installs_allowed(name, body.allowed, actor=caller.name)
    ry.workers.forget(name)
    return s.worker_json(ry.workers.get(name))


def worker_environments(name: str, ry: Ry, caller: Caller) -> list[dict[str, Any]]:
    """A worker's environments of dependency packages: their packages, state and install
    log."""
    require_worker(caller, name)  # a worker token reads its own worker's only
    ry.workers.get(name)  # a worker that is not there is not found
    return [s.environment_json(found) for found in ry.environments.listed(name)]


def request_worker_environment(
    name: str, body: s.InstallRequest, ry: Ry, caller: Caller
) -> dict[str, Any]:
    """Ask a worker to make the environment of these dependency packages (each of its
    dependencies with it; the newest version if none is given) at its next heartbeat:
    ``{"worker", "key", "state"}``, Requested (or Ready/Installing: nothing to do)."""
    require(caller, "admin")
    wanted = [p.dependency() for p in body.packages]
    return ry.environments.request(name, wanted, actor=caller.name)


def activity(
    ry: Ry,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    actor: str | None = None,
    action: str | None = None,
    workflow: str | None = None,
    before: s.Int32 | None = None,
) -> list[dict[str, Any]]:
    """The activity log, newest first: who did what, on what, when, from which address. An
    admin sees every entry; a user its own actions and those on workflows it may see.
    Filters: ``actor``, ``action`` (a prefix: ``workflow.``), ``workflow``; ``before`` an
    entry id, for the next page."""
    require(caller, "user")
    rows = ry.access.activity(
        caller, limit=limit, actor=actor, action=action, workflow=workflow, before_id=before
    )
    return [
        {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
        for row in rows
    ]


# -- purge ------------------------------------------------------------------------------------


class PurgeRequest(s.Body):
    dry_run: bool
    workflow: str | None = None
    older_than_days: int | None = None


def purge(body: PurgeRequest, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Remove obsolete runs and jobs and the file store's files that no job needs (admins);
    a dry run only says what would go."""
    require(caller, "admin")
    report = ry.purge.purge(
        dry_run=body.dry_run,
        workflow=body.workflow,
        older_than_days=body.older_than_days,
        actor=caller.name,
    )
    return report.to_json()
