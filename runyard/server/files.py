"""HTTP handlers of streamed files: the file store (job files) and User Data (the lab's
own folders, by scoped tokens)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from runyard.operations import previews
from runyard.operations.files import Upload
from runyard.server import schemas as s
from runyard.server.deps import Caller, Ry, UserDataCaller, require

# -- the file store ---------------------------------------------------------------------------


async def upload_file(
    request: Request,
    ry: Ry,
    caller: Caller,
    filename: str,
    size: s.Size | None = None,
    sha256: str | None = None,
) -> dict[str, Any]:
    """Store a file (the request body, streamed); ``size`` and ``sha256`` are checked when
    given. Answers the file's reference, to put in a job's outputs."""
    require(caller, "user", "job")
    upload = ry.files.begin_upload(filename, size=size, sha256=sha256)
    await _receive(request, upload)
    stored = await run_in_threadpool(
        ry.files.commit,
        upload,
        expected_size=size,
        expected_sha256=sha256,
        job_serial=caller.job_serial,
        uploaded_by=caller.name if caller.kind == "user" else None,
    )
    return stored.reference()


async def _receive(request: Request, upload: Upload) -> None:
    """Stream the request body into ``upload``; a broken transfer leaves nothing behind."""
    try:
        async for chunk in request.stream():
            await run_in_threadpool(upload.write, chunk)
    except BaseException:
        upload.discard()
        raise


def download_file(file_id: str, ry: Ry, caller: Caller) -> FileResponse:
    """A file of the file store, streamed; its SHA-256 in the ``X-Runyard-SHA256`` header."""
    ry.access.file(caller, file_id)
    stored, path = ry.files.get(file_id)
    return FileResponse(
        path,
        filename=stored.filename,
        media_type="application/octet-stream",
        headers={"x-runyard-sha256": stored.sha256},
    )


# -- User Data --------------------------------------------------------------------------------


def list_userdata_mappings(ry: Ry, caller: Caller) -> list[dict[str, Any]]:
    """The User Data mappings the caller may use: virtual roots, the groups they are for and
    (to admins) the server's folders they stand for."""
    require(caller, "user")
    return [
        s.userdata_mapping_json(m, folder=caller.is_admin)
        for m in ry.userdata.mappings()
        if ry.access.userdata_mapping(caller, m.groups)
    ]


def put_userdata_mapping(body: s.UserDataMappingBody, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Map a virtual root (``/Scans/``) to a folder of the server (replacing its folder if
    the root is mapped already)."""
    require(caller, "admin")
    mapping = ry.userdata.map(body.root, body.folder, actor=caller.name, groups=body.groups)
    return s.userdata_mapping_json(mapping)


def delete_userdata_mapping(root: str, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Remove the mapping of the virtual root ``root`` (the real folder is not touched)."""
    require(caller, "admin")
    ry.userdata.unmap(root, actor=caller.name)
    return {"root": root, "unmapped": True}


def create_userdata_token(body: s.UserDataTokenRequest, ry: Ry, caller: Caller) -> dict[str, Any]:
    """A short-lived token for the User Data file calls, allowing only ``scopes``:
    ``[["list"|"read"|"write", virtual path], ...]``."""
    require(caller, "user", "job")
    text, token = ry.userdata.create_token(
        body.scopes,
        issued_to=caller.name,
        may_use=lambda mapping: ry.access.userdata_mapping(caller, mapping.groups),
    )
    return {
        "token": text,
        "expires_at": token.expires_at.isoformat(),
        "scopes": [[scope.operation, scope.path] for scope in token.scopes],
    }


def list_userdata(ry: Ry, token: UserDataCaller, path: str | None = None) -> dict[str, Any]:
    """The files and subfolders of a User Data folder (default: the token's one ``list``
    scope). Needs a User Data token with a ``list`` scope."""
    return s.userdata_listing_json(ry.userdata.list_folder(token, path))


def read_userdata_file(path: str, ry: Ry, token: UserDataCaller) -> FileResponse:
    """A User Data file, streamed; its SHA-256 in the ``X-Runyard-SHA256`` header. Needs a
    User Data token with a ``read`` scope."""
    real, _, sha256 = ry.userdata.open_read(token, path)
    return FileResponse(
        real,
        filename=path.rsplit("/", 1)[-1],  # a link's own name, not what it points to
        media_type="application/octet-stream",
        headers={"x-runyard-sha256": sha256},
    )


def userdata_image_header(path: str, ry: Ry, token: UserDataCaller) -> dict[str, Any]:
    """The header of a User Data image (size, spacing, unit, data type) without its pixels.
    Needs a User Data token with a ``read`` scope."""
    return previews.userdata_header(ry.userdata, token, path)


async def write_userdata_file(
    request: Request,
    path: str,
    ry: Ry,
    token: UserDataCaller,
    size: s.Size | None = None,
    sha256: str | None = None,
) -> dict[str, Any]:
    """Write a User Data file (the request body, streamed); ``size`` and ``sha256`` are
    checked when given, and the file appears only once it is whole. Needs a User Data token
    with a ``write`` scope."""
    upload = await run_in_threadpool(ry.userdata.begin_write, token, path, size=size, sha256=sha256)
    await _receive(request, upload)
    written = await run_in_threadpool(
        ry.userdata.commit_write, upload, expected_size=size, expected_sha256=sha256
    )
    return {"path": path} | s.userdata_file_json(written) | {"sha256": upload.digest.hexdigest()}
