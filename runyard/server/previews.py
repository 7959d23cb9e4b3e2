"""HTTP handlers of a job's results as the runs table shows them: the thumbnail of an Image
output and a CSV output as a table (operations/results.py)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from runyard.server import schemas as s
from runyard.server.deps import Caller, Ry, require_job_access

# A thumbnail's image never changes (a file store file is never rewritten; a User Data
# image's name includes its size and time), but the caller's access may: private, an hour.
THUMBNAIL_CACHE = "private, max-age=3600"


async def job_thumbnail(
    serial: s.Int32, key: str, request: Request, ry: Ry, caller: Caller
) -> Response:
    """A small PNG (at most 96 pixels on its long side) of the middle z slice of the Image
    output ``key`` of a Done job; rendered once, then kept (an ``ETag`` says which)."""
    require_job_access(caller, serial)
    found = await run_in_threadpool(ry.results.thumbnail, caller, serial, key)
    headers = {"cache-control": THUMBNAIL_CACHE, "etag": found.etag}
    if request.headers.get("if-none-match") == found.etag:
        return Response(status_code=304, headers=headers)
    return Response(found.png, media_type="image/png", headers=headers)


def job_table(serial: s.Int32, key: str, ry: Ry, caller: Caller) -> dict[str, Any]:
    """The CSV output ``key`` of a Done job as a table: ``columns``, ``rows`` (numbers as
    numbers; at most 10,000), ``numeric`` (per column) and ``truncated``."""
    require_job_access(caller, serial)
    return ry.results.table(caller, serial, key)
