"""The application: the whole route table in one place, and one error shape."""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

import runyard
from runyard import web
from runyard.errors import RunyardError
from runyard.operations import Runyard
from runyard.operations.auth import TOKEN_USE_SECONDS
from runyard.operations.base import request_address
from runyard.server import (
    accounts,
    api,
    apidocs,
    files,
    previews,
    protocol,
    results,
    study,
    timeline,
    views,
)
from runyard.server.limits import RequestLimits
from runyard.server.schemas import ERROR_RESPONSES

log = logging.getLogger("runyard.server")
# How long a starting server process waits to hear the others' notifications (PostgreSQL).
LISTENING_SECONDS = 5.0
FOLD_SECONDS = 1.0

# (method, path, handler): every endpoint of the API.
ROUTES: list[tuple[str, str, Callable[..., Any]]] = [
    ("GET", "/api/task-types", api.list_task_types),
    ("GET", "/api/task-types/{name}", api.find_task_type),
    ("GET", "/api/task-types/{name}/{version}/package", api.task_type_package),
    ("POST", "/api/packages", api.import_package),
    ("GET", "/api/dependency-packages", api.list_dependency_packages),
    ("GET", "/api/dependency-packages/{name}/{version}/package", api.dependency_package),
    ("GET", "/api/workflows", api.list_workflows),
    ("GET", "/api/workflows/{name}", api.get_workflow),
    ("GET", "/api/workflows/{name}/export", api.export_workflow),
    ("GET", "/api/workflows/{name}/status", api.workflow_status),
    ("POST", "/api/workflows/{name}/runs", api.new_run),
    ("POST", "/api/workflows/{name}/tasks", study.add_task),
    ("PUT", "/api/workflows/{name}/tasks/{task}", study.edit_task),
    ("DELETE", "/api/workflows/{name}/tasks/{task}", study.delete_task),
    ("PUT", "/api/workflows/{name}/layout", study.set_layout),
    ("GET", "/api/workflows/{name}/task-counts", study.task_counts),
    ("GET", "/api/workflows/{name}/study-table", results.study_table),
    ("POST", "/api/workflows/{name}/outputs.zip", results.workflow_outputs_zip),
    ("GET", "/api/workflows/{name}/timeline", timeline.workflow_timeline),
    ("POST", "/api/workflows/{name}/rerun-stale", study.rerun_stale),
    ("POST", "/api/workflows/{name}/jobs/restart", api.restart_jobs),
    ("POST", "/api/workflows/{name}/{action}", api.workflow_action),
    ("PUT", "/api/runs/{run_id}/priority", api.set_run_priority),
    ("PUT", "/api/runs/{run_id}/name", study.rename_run),
    ("POST", "/api/runs/{run_id}/copy", study.copy_run),
    ("POST", "/api/runs/{run_id}/obsolete", study.obsolete_run),
    ("POST", "/api/runs/{run_id}/restore", study.restore_run),
    ("GET", "/api/jobs/{serial}", study.get_job),
    ("PUT", "/api/jobs/{serial}/name", study.rename_job),
    ("POST", "/api/jobs/{serial}/submit", study.submit_job),
    ("GET", "/api/jobs/{serial}/outputs.zip", results.job_outputs_zip),
    ("GET", "/api/jobs/{serial}/thumbnail", previews.job_thumbnail),
    ("GET", "/api/jobs/{serial}/table", previews.job_table),
    ("GET", "/api/jobs/{serial}/log", api.job_log),
    ("POST", "/api/jobs/{serial}/progress", api.job_progress),
    ("POST", "/api/jobs/{serial}/activity", api.job_activity),
    ("POST", "/api/jobs/{serial}/state", api.change_job_state),
    ("POST", "/api/jobs/{serial}/restart", api.restart_job),
    ("POST", "/api/spawn/tasks", api.spawn_task),
    ("POST", "/api/spawn/jobs", api.spawn_jobs),
    ("POST", "/api/spawn/serials", api.reserve_serials),
    ("POST", "/api/spawn/batch", api.spawn_batch),
    ("GET", "/api/spawn/keys", api.spawn_keys),
    ("POST", "/api/spawn/jobs/{serial}/state", api.change_spawned_job_state),
    ("POST", "/api/spawn/jobs/state", api.change_spawned_job_states),
    ("GET", "/api/spawn/sort-orders", api.spawn_sort_orders),
    ("POST", "/api/files", files.upload_file),
    ("GET", "/api/files/{file_id}", files.download_file),
    ("GET", "/api/userdata/mappings", files.list_userdata_mappings),
    ("PUT", "/api/userdata/mappings", files.put_userdata_mapping),
    ("DELETE", "/api/userdata/mappings", files.delete_userdata_mapping),
    ("POST", "/api/userdata/tokens", files.create_userdata_token),
    ("GET", "/api/userdata/list", files.list_userdata),
    ("GET", "/api/userdata/file", files.read_userdata_file),
    ("GET", "/api/userdata/image-header", files.userdata_image_header),
    ("PUT", "/api/userdata/file", files.write_userdata_file),
    ("POST", "/api/workers/register", protocol.register_worker),
    ("POST", "/api/workers/claim", protocol.claim_jobs),
    ("POST", "/api/workers/report", protocol.worker_report),
    ("POST", "/api/workers/heartbeat", protocol.worker_heartbeat),
    ("POST", "/api/jobs/{serial}/heartbeat", protocol.heartbeat),
    ("POST", "/api/jobs/{serial}/complete", protocol.complete_job),
    ("POST", "/api/jobs/{serial}/fail", protocol.fail_job),
    ("POST", "/api/jobs/{serial}/release", protocol.release_job),
    ("POST", "/api/workers/environments", protocol.environment_news),
    ("POST", "/api/workers/environments/plan", protocol.environment_plan),
    ("GET", "/api/workers", api.list_workers),
    ("PUT", "/api/workers/{name}/max-jobs", api.limit_worker),
    ("PUT", "/api/workers/{name}/installs", api.allow_worker_installs),
    ("GET", "/api/workers/{name}/environments", api.worker_environments),
    ("POST", "/api/workers/{name}/environments", api.request_worker_environment),
    ("POST", "/api/tokens/worker", api.create_worker_token),
    ("GET", "/api/activity", api.activity),
    *accounts.ROUTES,  # users, groups, personal tokens, sharing (server/accounts.py)
    ("POST", "/api/purge", api.purge),
]


def create_app(runyard_instance: Runyard) -> FastAPI:
    app = FastAPI(
        lifespan=_lifespan,
        title="Runyard",
        version=runyard.__version__,
        description="Workflows of tasks, runs and jobs for batch processing of scientific data. "
        "Every call needs 'Authorization: Bearer TOKEN'.",
        docs_url=None,  # served with local assets by apidocs.install
        redoc_url=None,
    )
    app.state.runyard = runyard_instance
    for method, path, handler in ROUTES:
        app.add_api_route(
            path, handler, methods=[method], summary=_summary(handler), responses=ERROR_RESPONSES
        )
    apidocs.install(app)  # /docs: Swagger UI from local files (server/apidocs.py)
    views.install(app)  # the runs table by pages and its live changes (server/views.py)
    web.install(app)  # the web UI (runyard/web/)
    app.add_middleware(RequestLimits, authenticate=runyard_instance.auth.authenticate)
    app.add_middleware(CallerAddress)
    app.add_exception_handler(RunyardError, _runyard_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(OSError, _environment_error)
    app.add_exception_handler(DBAPIError, _environment_error)
    app.add_exception_handler(Exception, _internal_error)
    return app


class CallerAddress:
    """Makes the caller's network address known to the operations layer for the request
    (the activity log records it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        token = request_address.set(client[0] if client else None)
        try:
            await self.app(scope, receive, send)
        finally:
            request_address.reset(token)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    ry: Runyard = app.state.runyard
    # On PostgreSQL: hear the other server processes' notifications, send them ours; serve
    # once they are heard (if the database answers within a few seconds).
    ry.changed.start()
    await run_in_threadpool(ry.changed.listening, LISTENING_SECONDS)
    stopping = asyncio.Event()
    chores = [
        # Put jobs whose worker stopped answering back to Queued (or Failed), even when no
        # worker is claiming. Every server process sweeps; the guarded updates make that safe.
        _every(
            min(5.0, max(0.25, ry.settings.lease_seconds / 4)),
            ry.leases.expire_leases,
            "sweeping expired leases",
            stopping,
        )
    ]
    # Write down when tokens were last used (noted in memory at each request).
    chores.append(_every(TOKEN_USE_SECONDS, ry.auth.write_token_use, "noting token use", stopping))
    if ry.store.dialect == "postgresql":
        # Fold the changes of the counts of jobs and runs into the counts, so that a reading
        # adds up few of them (runyard.store.counts); a full batch means more may wait.
        chores.append(_every(FOLD_SECONDS, ry.views.fold_counts, "folding counts", stopping))
    tasks = [asyncio.create_task(chore) for chore in chores]
    try:
        yield
    finally:
        # Let a chore's call finish rather than cancel it: its thread would go on using a
        # database connection after the store closed them (a connection left open).
        stopping.set()
        await asyncio.gather(*tasks)
        try:
            await run_in_threadpool(ry.auth.write_token_use)  # the uses since the last time
        except Exception:
            log.exception("noting token use failed")
        await run_in_threadpool(ry.changed.stop)


async def _every(
    seconds: float, chore: Callable[[], Any], doing: str, stopping: asyncio.Event
) -> None:
    """Call ``chore`` in a thread every ``seconds`` (again at once while it answers True: it
    did a full batch) until ``stopping`` is set; a failure is logged and tried again."""
    while not await _waited(stopping, seconds):
        try:
            while await run_in_threadpool(chore) is True and not stopping.is_set():
                pass
        except Exception:
            log.exception("%s failed; trying again", doing)


async def _waited(event: asyncio.Event, seconds: float) -> bool:
    """Wait up to ``seconds`` for ``event``; whether it is set."""
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return False
    return True


def _summary(handler: Callable[..., Any]) -> str:
    doc = (handler.__doc__ or handler.__name__.replace("_", " ")).strip()
    return doc.splitlines()[0].rstrip(".")


def _shape(status: int, code: str, message: str, details: dict[str, Any]) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "details": details}}, status_code=status
    )


async def _runyard_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RunyardError)
    return JSONResponse(exc.to_json(), status_code=exc.status)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
        for e in exc.errors()
    ]
    return _shape(422, "invalid_input", "; ".join(problems), {"errors": problems})


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400:  # a body that is not JSON (or not UTF-8): a malformed request
        message = f"{request.method} {request.url.path}: {exc.detail}; send UTF-8 JSON"
        if isinstance(exc.__cause__, RecursionError):
            message = (
                f"{request.method} {request.url.path}: the JSON body is nested too deeply "
                "(arrays and objects inside one another); send a flatter body"
            )
        return _shape(422, "invalid_input", message, {})
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return _shape(exc.status_code, code, message, {})


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    return _shape(500, "internal_error", f"internal error: {type(exc).__name__}: {_said(exc)}", {})


async def _environment_error(request: Request, exc: Exception) -> JSONResponse:
    """An OSError or a database error: 507 when the disk is full (an upload, a User Data
    write, the database), 503 while the database cannot be reached."""
    where = f"{request.method} {request.url.path}"
    if out_of_space(exc):
        log.warning("%s: out of storage space: %s", where, _said(exc))
        return _shape(
            507,
            "insufficient_storage",
            f"the server has no storage space left ({_said(_original(exc))}): nothing was "
            "stored; free some space on the server (or ask its admin to), then try again",
            {},
        )
    if isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    ):
        log.warning("%s: the database is unavailable: %s", where, _said(exc))
        return _shape(
            503,
            "database_unavailable",
            "the server cannot reach its database (it may be restarting or busy); try again "
            "in a moment, and if this goes on, ask the server's admin to check the database",
            {},
        )
    raise exc  # anything else is a bug: _internal_error answers it, the log has it whole


NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
SQLITE_FULL = 13  # "database or disk is full"
POSTGRES_DISK_FULL = "53100"  # SQLSTATE disk_full


def out_of_space(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says that the disk is full: ENOSPC or EDQUOT from
    the operating system, SQLITE_FULL, or PostgreSQL's disk_full."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in NO_SPACE:
            return True
        original = current.orig if isinstance(current, DBAPIError) else current
        if getattr(original, "sqlite_errorcode", None) == SQLITE_FULL:
            return True
        if getattr(original, "sqlstate", None) == POSTGRES_DISK_FULL:
            return True
        current = current.__cause__ or current.__context__
    return False


def _original(exc: Exception) -> Exception:
    """The database driver's own error inside a SQLAlchemy one (it names no SQL)."""
    if isinstance(exc, DBAPIError) and isinstance(exc.orig, Exception):
        return exc.orig
    return exc


def _said(exc: Exception) -> str:
    """What an unexpected exception says, less what the caller has no business seeing (the
    server's log has it all): a database error's SQL statement and parameters (the lines
    after its first), an OSError's path on the server."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return next(iter(str(exc).splitlines()), "")
