"""HTTP handlers of the views the web UI is built on (and that scripts may use too): the
runs table one page at a time, a stream of its changes (Server-Sent Events), a job's history,
creating an empty workflow, and slices of images as PNG."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import FastAPI, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from runyard.errors import InvalidInput, RunyardError
from runyard.images import Image
from runyard.operations import Principal, Runyard, previews
from runyard.server import schemas as s
from runyard.server.deps import Caller, Ry, require, require_job_access

# How often a stream looks whether this server process changed something (cheap: a
# counter), and how often it asks the database anyway (changes made by other processes).
POLL_SECONDS = 0.5
RECHECK_SECONDS = 2.0
KEEPALIVE_SECONDS = 15.0


def workflow_runs(
    name: str,
    ry: Ry,
    caller: Caller,
    offset: s.Int32 = 0,
    limit: s.Int32 = 100,
    state: str | None = None,
    run_name: Annotated[str | None, Query(alias="name")] = None,
    order: str = "sort_order",
    desc: bool = False,
    obsolete: str = "exclude",
) -> dict[str, Any]:
    """One page of the runs x tasks table: the runs that have a job in ``state`` and
    ``name`` in their name (any case), among the live runs (``obsolete=exclude``, the
    default), the obsolete ones (``only``) or both (``include``), ordered by ``order``
    (``sort_order`` or ``name``), ``limit`` (at most 1000) from ``offset`` on, each with its
    live job per task; ``total`` counts all that pass the filters."""
    ry.access.workflow(caller, name)
    return ry.views.runs_page(
        name,
        offset=offset,
        limit=limit,
        state=state or None,
        run_name=run_name or None,
        order=order,
        descending=desc,
        obsolete=obsolete,
    )


async def workflow_events(name: str, ry: Ry, caller: Caller) -> StreamingResponse:
    """Server-Sent Events: a ``changed`` event (the live jobs by state, the number of runs,
    the workflow's state) at once and whenever the workflow's runs table changes."""
    await run_in_threadpool(ry.access.workflow, caller, name)
    first = await run_in_threadpool(ry.views.fingerprint, name)
    return StreamingResponse(
        _changes(ry, name, first),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


async def _changes(ry: Runyard, name: str, first: dict[str, Any]) -> AsyncIterator[str]:
    last, seen = first, ry.changed.version
    yield _event("changed", first)
    checked = sent = time.monotonic()
    while not ry.changed.closed:
        await asyncio.sleep(POLL_SECONDS)
        now = time.monotonic()
        if ry.changed.version != seen or now - checked >= RECHECK_SECONDS:
            seen, checked = ry.changed.version, now
            try:
                current = await run_in_threadpool(ry.views.fingerprint, name)
            except RunyardError as exc:  # the workflow is gone
                yield _event("error", exc.to_json())
                return
            if current != last:
                last, sent = current, now
                yield _event("changed", current)
                continue
        if now - sent >= KEEPALIVE_SECONDS:
            sent = now
            yield ": keep-alive\n\n"


def _event(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class NewWorkflow(s.Body):
    name: str = Field(min_length=1, max_length=200)
    remarks: str = Field(default="", max_length=100_000)


def create_workflow(body: NewWorkflow, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Create an empty Draft workflow (add its tasks with POST .../tasks); the caller owns it."""
    require(caller, "user")
    workflow = ry.workflows.create(body.name, body.remarks, actor=caller.name, owner=caller.user_id)
    return s.workflow_json(workflow) | {"tasks": []}


def job_history(serial: s.Int32, ry: Ry, caller: Caller) -> list[dict[str, Any]]:
    """A job's history, oldest first: created, started, finished, and its activity entries."""
    require_job_access(caller, serial)
    ry.access.job(caller, serial)
    return ry.views.job_history(serial)


def job_form(serial: s.Int32, ry: Ry, caller: Caller) -> dict[str, Any]:
    """What a user may enter for a job: the inputs it asks for, an interactive job's outputs."""
    require_job_access(caller, serial)
    ry.access.job(caller, serial)
    return ry.views.job_form(serial)


def _image(
    ry: Runyard, caller: Principal, file_id: str | None, raw_file_id: str | None, path: str | None
) -> Image:
    if path:
        ry.access.userdata_path(caller, path)
        return previews.userdata_image(ry.userdata, path)
    if file_id and raw_file_id:
        ry.access.file(caller, file_id)
        ry.access.file(caller, raw_file_id)
        return previews.filestore_image(ry.files, file_id, raw_file_id)
    raise InvalidInput("name the image: file_id and raw_file_id (file store) or path (User Data)")


def image_info(
    ry: Ry,
    caller: Caller,
    file_id: str | None = None,
    raw_file_id: str | None = None,
    path: str | None = None,
) -> dict[str, Any]:
    """An image's size, geometry and data type, with a window and level for its slices."""
    require(caller, "user")
    return previews.describe(_image(ry, caller, file_id, raw_file_id, path))


def image_slice(
    ry: Ry,
    caller: Caller,
    axis: str = "z",
    index: s.Int32 = 0,
    file_id: str | None = None,
    raw_file_id: str | None = None,
    path: str | None = None,
    window: float | None = None,
    level: float | None = None,
    overlay: bool = False,
) -> Response:
    """One slice of an image as PNG: grey through ``window`` and ``level`` (default: the
    slice's 1st to 99th percentile), or with ``overlay=true`` a segmentation's labels in
    see-through colours. File store images by ``file_id`` and ``raw_file_id``; User Data
    images by ``path``."""
    require(caller, "user")
    cut = previews.slice_of(_image(ry, caller, file_id, raw_file_id, path), axis, index)
    if overlay:
        body = previews.overlay_png(cut)
    else:
        if window is None or level is None:
            low, high = previews.percentiles(cut)
            window, level = (
                (high - low, (high + low) / 2) if window is None else (window, level or 0)
            )
        body = previews.grey_png(cut, window, level)
    return Response(body, media_type="image/png", headers={"cache-control": "private, max-age=60"})


ROUTES: list[tuple[str, str, Callable[..., Any]]] = [
    ("GET", "/api/workflows/{name}/runs", workflow_runs),
    ("GET", "/api/workflows/{name}/events", workflow_events),
    ("POST", "/api/workflows", create_workflow),
    ("GET", "/api/jobs/{serial}/history", job_history),
    ("GET", "/api/jobs/{serial}/form", job_form),
    ("GET", "/api/images/info", image_info),
    ("GET", "/api/images/slice", image_slice),
]


def install(app: FastAPI) -> None:
    for method, path, handler in ROUTES:
        doc = (handler.__doc__ or "").strip().splitlines()[0].rstrip(".")
        app.add_api_route(path, handler, methods=[method], summary=doc, responses=s.ERROR_RESPONSES)
