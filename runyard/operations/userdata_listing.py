"""Listing a User Data folder: what a listing shows of each entry, and what it leaves out
(docs/userdata.md#listing)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from runyard.models import UnnamableEntry, UserDataFile, UserDataFolder, UserDataListing
from runyard.task.virtualpath import InvalidVirtualPath, check_path

TEMP_PREFIX = ".runyard-upload-"  # writes in progress: hidden from listings, reserved
NOT_UTF8 = "is not valid UTF-8; rename it to reach it"


def read_listing(path: str, real: Path, real_root: Path) -> UserDataListing:
    """The listing of the virtual folder ``path``, the real folder ``real`` inside the
    mapped folder ``real_root`` (both resolved and checked)."""
    files: list[UserDataFile] = []
    folders: list[UserDataFolder] = []
    unnamable: list[UnnamableEntry] = []
    with os.scandir(real) as entries:
        for entry in entries:
            item = _listed(entry, real_root)
            if isinstance(item, UserDataFile):
                files.append(item)
            elif isinstance(item, UserDataFolder):
                folders.append(item)
            elif item is not None:
                unnamable.append(item)
    return UserDataListing(
        path=path,
        files=tuple(sorted(files, key=lambda f: f.name)),
        folders=tuple(sorted(folders, key=lambda f: f.name)),
        unnamable=tuple(sorted(unnamable, key=lambda f: f.name)),
    )


def _not_utf8(name: str) -> bool:
    """Whether the name, as the file system gave it, is not UTF-8 (Python holds each byte
    that is not as a lone surrogate, which no answer can carry)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _listed(
    entry: os.DirEntry[str], real_root: Path
) -> UserDataFile | UserDataFolder | UnnamableEntry | None:
    """A listing item for ``entry``, or None for what a listing leaves out."""
    name = entry.name
    if name.startswith(TEMP_PREFIX):
        return None
    if _not_utf8(name):
        return UnnamableEntry(
            name=os.fsencode(name).decode("utf-8", "backslashreplace"),
            problem=NOT_UTF8,
        )
    try:
        check_path("/" + name)
    except InvalidVirtualPath:
        return None
    try:
        if entry.is_symlink() and (
            entry.is_dir()  # as os.walk: a link to a folder could make walkers loop forever
            or not Path(os.path.realpath(entry.path)).is_relative_to(real_root)
        ):
            return None
        if entry.is_dir():
            return UserDataFolder(name=name)
        if entry.is_file():
            stat = entry.stat()
            return UserDataFile(
                name=name, size=stat.st_size, mtime=datetime.fromtimestamp(stat.st_mtime, UTC)
            )
    except OSError:  # removed meanwhile, or unreadable
        return None
    return None
