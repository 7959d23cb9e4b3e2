"""HTTP handler of a workflow's timeline: its jobs as bars over time, and its throughput."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Query

from runyard.operations.timeline import MAX_BARS
from runyard.server.deps import Caller, Ry


def workflow_timeline(
    name: str,
    ry: Ry,
    caller: Caller,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_BARS)] = MAX_BARS,
) -> dict[str, Any]:
    """A workflow's jobs as bars over time: each job's task, run, worker, state and times
    (``created_at``: made, waiting for a worker from then; ``claimed_at``;
    ``script_started_at``; ``ended_at``) for the jobs whose time meets ``since``..``until``
    (ISO 8601 with a time zone; either may be left out), the most recently made first, at
    most ``limit`` (5,000; ``cut`` says that older ones were left out); and ``throughput``:
    the jobs ended in each minute of the last hour (``ended``, of them ``failed``)."""
    ry.access.workflow(caller, name)
    return ry.timeline.timeline(name, since=since, until=until, limit=limit)
