"""``network``: XamFlow's User Data helpers: the virtual-path functions are
``runyard.task.virtualpath`` under XamFlow's names, listing is ``runyard.task.userdata``
(docs/compat.md)."""

from __future__ import annotations

from typing import Any

from runyard.task.virtualpath import InvalidVirtualPath
from runyard.task.virtualpath import folder_of as get_virtualpath_dirname
from runyard.task.virtualpath import join_file as virtualpath_join_file
from runyard.task.virtualpath import join_folder as virtualpath_join_folder


def list_files_and_folders_on_filestorage(
    token: str,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The file items (``name``, ``size``, ``mtime``) and folder items (``name``,
    ``virtual_name``) of the folder that a ``list`` token of ``get_xf_userdata_token`` is for
    (it must have exactly one ``list`` scope). ``virtual_name`` is the folder's name with a
    trailing ``/``, as ``virtualpath_join_folder`` takes it; ``mtime`` is an ISO 8601 UTC
    time. The server is the one of the job (``RUNYARD_SERVER``)."""
    from runyard.task import userdata

    data = userdata.list_folder_json(token)
    files: list[dict[str, Any]] = data["files"]
    folders: list[dict[str, Any]] = data["folders"]
    return files, folders


__all__ = [
    "InvalidVirtualPath",
    "get_virtualpath_dirname",
    "list_files_and_folders_on_filestorage",
    "virtualpath_join_file",
    "virtualpath_join_folder",
]
