"""Reading a package safely: a folder, or the same folder zipped (``.xfp``).

Everything is read into memory and checked; nothing is ever extracted to disk. A zip may hold
the files at its top level or inside one single top-level folder.
"""

from __future__ import annotations

import io
import lzma
import os
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from runyard.errors import InvalidPackage

MAX_FILES = 10_000
MAX_TOTAL_BYTES = 1 << 30  # 1 GiB, uncompressed
IGNORED_TOP_FOLDERS = frozenset({"__MACOSX"})  # resource forks that macOS "Compress" adds
_REPACK = "repack the package with plain relative paths (folder/file.py)"
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True, kw_only=True)
class PackageFiles:
    """The files of a package: relative POSIX path -> content, and where they came from."""

    files: dict[str, bytes]
    origin: str


def read_package(path: Path) -> PackageFiles:
    """Read a package folder or ``.xfp`` zip into memory, refusing anything unsafe."""
    origin = str(path)
    if not path.exists() and not path.is_symlink():
        raise InvalidPackage("does not exist; check the path of the package", file=origin)
    if path.is_dir():
        return PackageFiles(files=_read_folder(path, origin), origin=origin)
    try:
        with path.open("rb") as stream:
            return PackageFiles(files=_read_zip(stream, origin), origin=origin)
    except OSError as e:
        raise InvalidPackage(
            f"cannot be read ({e.strerror}); check its permissions", file=origin
        ) from e


def read_package_bytes(data: bytes, origin: str) -> PackageFiles:
    """Read an ``.xfp`` zip held in memory (an upload); ``origin`` names it in errors."""
    return PackageFiles(files=_read_zip(io.BytesIO(data), origin), origin=origin)


def path_problem(name: str) -> str | None:
    """Why ``name`` is not a safe relative POSIX path inside a package, or None."""
    if not name:
        return "is an empty path"
    if "\x00" in name:
        return "contains a NUL character"
    if "\\" in name:
        return "contains a backslash; use / between folder names"
    if name.startswith("/") or _DRIVE.match(name):
        return "is an absolute path"
    parts = name.split("/")
    if ".." in parts:
        return "contains '..', which would leave the package"
    if "" in parts or "." in parts:
        return "contains an empty or '.' folder name"
    return None


def _shown(name: str) -> str:
    return name.replace("\x00", "<NUL>")


def _refuse_entry(problem: str, origin: str, name: str) -> InvalidPackage:
    return InvalidPackage(f"the path {problem}; {_REPACK}", file=origin, field=_shown(name))


def _too_many_files(origin: str) -> InvalidPackage:
    return InvalidPackage(
        f"holds more than {MAX_FILES} files; remove files the package does not need",
        file=origin,
    )


def _too_large(origin: str) -> InvalidPackage:
    return InvalidPackage(
        f"holds more than {MAX_TOTAL_BYTES / 2**30:g} GiB ({MAX_TOTAL_BYTES} bytes) "
        "uncompressed; keep large data out of packages (put it in User Data)",
        file=origin,
    )


# -- folders --------------------------------------------------------------------------------


def _read_folder(root: Path, origin: str) -> dict[str, bytes]:
    found: list[tuple[str, str]] = []  # (relative name, real path)
    total = 0
    stack: list[tuple[str, str]] = [(str(root), "")]
    while stack:
        folder, prefix = stack.pop()
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=lambda e: e.name)
        for entry in entries:
            name = prefix + entry.name
            _check_folder_entry(entry, name, origin)
            if entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, name + "/"))
                continue
            found.append((name, entry.path))
            total += entry.stat(follow_symlinks=False).st_size
            if len(found) > MAX_FILES:
                raise _too_many_files(origin)
            if total > MAX_TOTAL_BYTES:
                raise _too_large(origin)
    return {name: Path(real).read_bytes() for name, real in sorted(found)}


def _check_folder_entry(entry: os.DirEntry[str], name: str, origin: str) -> None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidPackage(
            "the file name is not valid UTF-8; rename it",
            file=origin,
            field=os.fsencode(name).decode("utf-8", "replace"),
        ) from None
    problem = path_problem(name)
    if problem:
        raise _refuse_entry(problem, origin, name)
    if entry.is_symlink():
        raise InvalidPackage(
            "is a symbolic link; packages may not contain links, copy the real file instead",
            file=origin,
            field=name,
        )
    if not entry.is_dir(follow_symlinks=False) and not entry.is_file(follow_symlinks=False):
        raise InvalidPackage(
            "is not a regular file or folder; remove it from the package",
            file=origin,
            field=name,
        )


# -- zips -----------------------------------------------------------------------------------


def _read_zip(stream: IO[bytes], origin: str) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, EOFError, ValueError) as e:
        raise InvalidPackage(
            f"is not a zip file ({e}); a package is a folder or that folder zipped as .xfp",
            file=origin,
        ) from e
    with archive:
        members = _checked_members(archive.infolist(), origin)
        files = {info.filename: _read_member(archive, info, origin) for info in members}
    return _without_top_folder(files)


def _checked_members(infos: list[zipfile.ZipInfo], origin: str) -> list[zipfile.ZipInfo]:
    seen: set[str] = set()
    members: list[zipfile.ZipInfo] = []
    total = 0
    for info in infos:
        name = info.orig_filename.removesuffix("/") if info.is_dir() else info.orig_filename
        problem = path_problem(name)
        if problem:
            raise _refuse_entry(problem, origin, info.orig_filename)
        if name in seen:
            raise InvalidPackage(
                "appears twice in the zip; repack the package so each file appears once",
                file=origin,
                field=name,
            )
        seen.add(name)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise InvalidPackage(
                "is a symbolic link; packages may not contain links, zip the real file instead",
                file=origin,
                field=name,
            )
        if info.is_dir() or name.split("/", 1)[0] in IGNORED_TOP_FOLDERS:
            continue
        members.append(info)
        total += info.file_size
        if len(members) > MAX_FILES:
            raise _too_many_files(origin)
        if total > MAX_TOTAL_BYTES:
            raise _too_large(origin)
    return members


# How much of a member is inflated at a time: reading it whole would inflate all of it at
# once, whatever its header declares (a zip bomb's entry can declare 10 bytes).
READ_CHUNK = 1024 * 1024


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, origin: str) -> bytes:
    """The member's bytes, inflated a chunk at a time and never past its declared size
    (which the caps were checked against); a member that inflates to more or less fails
    its checksum."""
    try:
        chunks = []
        with archive.open(info) as member:
            while chunk := member.read(READ_CHUNK):
                chunks.append(chunk)
        return b"".join(chunks)
    except (
        zipfile.BadZipFile,
        NotImplementedError,
        RuntimeError,
        EOFError,
        OSError,
        zlib.error,
        lzma.LZMAError,
    ) as e:
        raise InvalidPackage(
            f"cannot be read from the zip ({e}); repack the package without a password, "
            "with standard compression",
            file=origin,
            field=info.filename,
        ) from e


def _without_top_folder(files: dict[str, bytes]) -> dict[str, bytes]:
    """Strip one single top-level folder that holds every file (but not ``metadata.json``)."""
    if not files or "metadata.json" in files:
        return files
    tops = {name.split("/", 1)[0] for name in files}
    if len(tops) != 1 or not all("/" in name for name in files):
        return files
    return {name.split("/", 1)[1]: data for name, data in files.items()}
