"""``network``: XamFlow's User Data helpers. The virtual-path functions work now (they are
``runyard.task.virtualpath`` under XamFlow's names); listing User Data arrives with User Data
itself (docs/compat.md)."""

from __future__ import annotations

from typing import Any

from runyard.compat import USER_DATA, not_available
from runyard.task.virtualpath import InvalidVirtualPath
from runyard.task.virtualpath import folder_of as get_virtualpath_dirname
from runyard.task.virtualpath import join_file as virtualpath_join_file
from runyard.task.virtualpath import join_folder as virtualpath_join_folder


def list_files_and_folders_on_filestorage(
    token: str,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The file items (``name``, ``size``, ``mtime``) and folder items (``name``,
    ``virtual_name``) of the folder that a ``list`` token of ``get_xf_userdata_token`` is for."""
    not_available("network.list_files_and_folders_on_filestorage", USER_DATA)


__all__ = [
    "InvalidVirtualPath",
    "get_virtualpath_dirname",
    "list_files_and_folders_on_filestorage",
    "virtualpath_join_file",
    "virtualpath_join_folder",
]
