"""User Data for task scripts: the lab's own files, addressed by virtual paths
(``/Scans/2026/scan.aim``) that an admin maps onto folders of the server.

    from runyard import task
    from runyard.task import userdata

    token = userdata.userdata_token([("list", "/Scans/s1/"), ("read", "/Scans/s1/")])
    listing = userdata.list_folder(token, "/Scans/s1/")
    for item in listing.files:
        userdata.read_file(token, f"/Scans/s1/{item.name}", task.current_job().working_dir)

Every file call needs a User Data token: short-lived (15 minutes), signed by the server, and
valid only for the operations (``list``, ``read``, ``write``) on the paths it was asked for (a
folder path covers everything below it). A job asks for one with its own job token. The
calls go to the server the job runs for (``RUNYARD_SERVER``) unless ``server`` names another.
Files stream in both directions and are checked by size and SHA-256.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import runyard.task as _task
from runyard.task import virtualpath

if TYPE_CHECKING:
    from runyard.client import Client

OPERATIONS = ("list", "read", "write")

__all__ = [
    "OPERATIONS",
    "FileItem",
    "FolderItem",
    "FolderListing",
    "image_header",
    "list_folder",
    "read_file",
    "userdata_token",
    "write_file",
]


@dataclass(frozen=True, kw_only=True)
class FileItem:
    name: str
    size: int
    mtime: datetime


@dataclass(frozen=True, kw_only=True)
class FolderItem:
    """A subfolder; ``virtual_name`` is its name with a trailing ``/``."""

    name: str
    virtual_name: str


@dataclass(frozen=True, kw_only=True)
class FolderListing:
    """The files and subfolders of the User Data folder ``path``, each sorted by name."""

    path: str
    files: tuple[FileItem, ...]
    folders: tuple[FolderItem, ...]


def userdata_token(
    scopes: Sequence[tuple[str, str]] | Sequence[Sequence[str]], *, client: Client | None = None
) -> str:
    """A User Data token for ``scopes``: ``[("list"|"read"|"write", virtual path), ...]``,
    asked for with the job's token (or ``client``'s)."""
    pairs = [list(scope) for scope in scopes]
    for pair in pairs:
        if len(pair) != 2 or pair[0] not in OPERATIONS:
            raise _task.TaskError(
                f"a User Data scope is (operation, virtual path) with an operation of "
                f"{', '.join(OPERATIONS)}; got {pair!r}"
            )
        try:
            virtualpath.check_path(pair[1])
        except virtualpath.InvalidVirtualPath as exc:
            raise _task.TaskError(str(exc)) from None
    caller = client if client is not None else _task.current_job().client()
    # A new token per call: asking again after a lost answer only makes one more.
    answer: dict[str, Any] = caller.post("/api/userdata/tokens", {"scopes": pairs}, idempotent=True)
    token: str = answer["token"]
    return token


def list_folder_json(token: str, path: str | None = None, *, server: str | None = None) -> Any:
    """The answer of ``GET /api/userdata/list`` as decoded JSON: ``{"path", "files":
    [{"name", "size", "mtime"}], "folders": [{"name", "virtual_name"}]}``."""
    params = {"path": virtualpath.check_folder(path)} if path is not None else None
    with _client(token, server) as client:
        return client.get("/api/userdata/list", params=params)


def list_folder(token: str, path: str | None = None, *, server: str | None = None) -> FolderListing:
    """The files and subfolders of the folder ``path`` (default: the one folder the token
    may list)."""
    data = list_folder_json(token, path, server=server)
    return FolderListing(
        path=data["path"],
        files=tuple(
            FileItem(name=f["name"], size=f["size"], mtime=datetime.fromisoformat(f["mtime"]))
            for f in data["files"]
        ),
        folders=tuple(
            FolderItem(name=f["name"], virtual_name=f["virtual_name"]) for f in data["folders"]
        ),
    )


def read_file(token: str, path: str, target: Path | str, *, server: str | None = None) -> Path:
    """Stream the file ``path`` to ``target`` (a file path, or a folder to put it in under
    its own name); the local path. Size and SHA-256 are checked, and the local file appears
    only once it is whole."""
    virtualpath.check_path(path)
    local = Path(target)
    if local.is_dir():
        local = local / path.rsplit("/", 1)[1]
    with _client(token, server) as client:
        return client.fetch("/api/userdata/file", local, params={"path": path})


def image_header(token: str, path: str, *, server: str | None = None) -> dict[str, Any]:
    """What the header of the User Data image ``path`` (``.omni``, ``.aim``, ``.isq``) says,
    read by the server without fetching the file: ``{"path", "size", "spacing", "unit",
    "data_type"}``. Needs a ``read`` scope."""
    virtualpath.check_path(path)
    with _client(token, server) as client:
        header: dict[str, Any] = client.get("/api/userdata/image-header", params={"path": path})
    return header


def write_file(
    token: str, path: str, source: Path | str, *, server: str | None = None
) -> dict[str, Any]:
    """Stream the local file ``source`` to the User Data file ``path`` (created, or
    replaced once the new one is whole); the server's answer: ``{"path", "name", "size",
    "mtime", "sha256"}``."""
    virtualpath.check_path(path)
    with _client(token, server) as client:
        answer: dict[str, Any] = client.send_file(
            "PUT", "/api/userdata/file", Path(source), params={"path": path}
        )
    return answer


def download(job: _task.CurrentJob, file: dict[str, Any], folder: Path) -> Path:
    """What ``CurrentJob.download`` does for a User Data file value (``{"source":
    "userdata", "virtualpath": ..., "filename": ...}``): ask for a read token, then stream
    the file into ``folder``. ``virtualpath`` is the file's path, or its folder's (ending in
    ``/``) with ``filename`` the file's name."""
    where = file.get("virtualpath")
    if not isinstance(where, str) or not where:
        raise _task.TaskError(f"the User Data file value has no 'virtualpath'; got {file!r}")
    try:
        if where.endswith("/"):
            path = virtualpath.join_file(where, str(file.get("filename") or ""))
        else:
            path = virtualpath.check_path(where)
    except virtualpath.InvalidVirtualPath as exc:
        raise _task.TaskError(f"cannot download {file!r}: {exc}") from None
    name = path.rsplit("/", 1)[1]
    token = userdata_token([("read", path)], client=job.client())
    return read_file(token, path, folder / name, server=job.server)


def _client(token: str, server: str | None) -> Client:
    return _task.job_client(server or _task._variable("RUNYARD_SERVER"), token)
