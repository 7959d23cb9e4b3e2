"""HTTP handlers of the views the web UI is built on (and that scripts may use too): the
runs table one page at a time, and a stream of its changes (Server-Sent Events)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import FastAPI, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from runyard.errors import RunyardError
from runyard.operations import Runyard
from runyard.server.deps import Caller, Ry

# How often a stream looks whether this server process changed something (cheap: a
# counter), and how often it asks the database anyway (changes made by other processes).
POLL_SECONDS = 0.5
RECHECK_SECONDS = 2.0
KEEPALIVE_SECONDS = 15.0


def workflow_runs(
    name: str,
    ry: Ry,
    caller: Caller,
    offset: int = 0,
    limit: int = 100,
    state: str | None = None,
    run_name: Annotated[str | None, Query(alias="name")] = None,
    order: str = "sort_order",
    desc: bool = False,
) -> dict[str, Any]:
    """One page of the runs x tasks table: the runs that have a job in ``state`` and
    ``name`` in their name (any case), ordered by ``order`` (``sort_order`` or ``name``),
    ``limit`` (at most 1000) from ``offset`` on, each with its live job per task; ``total``
    counts all that pass the filters."""
    return ry.views.runs_page(
        name,
        offset=offset,
        limit=limit,
        state=state or None,
        run_name=run_name or None,
        order=order,
        descending=desc,
    )


async def workflow_events(name: str, ry: Ry, caller: Caller) -> StreamingResponse:
    """Server-Sent Events: a ``changed`` event (the live jobs by state, the number of runs,
    the workflow's state) at once and whenever the workflow's runs table changes."""
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


ROUTES: list[tuple[str, str, Callable[..., Any]]] = [
    ("GET", "/api/workflows/{name}/runs", workflow_runs),
    ("GET", "/api/workflows/{name}/events", workflow_events),
]


def install(app: FastAPI) -> None:
    for method, path, handler in ROUTES:
        doc = (handler.__doc__ or "").strip().splitlines()[0].rstrip(".")
        app.add_api_route(path, handler, methods=[method], summary=doc)
