"""Reading a package safely: a folder, or the same folder zipped (``.xfp``).

Every entry's name and size is checked before anything is inflated; an entry is read only
when asked for (``PackageEntries``), a chunk at a time and never past the size its header
declares: the few files the server parses (metadata, interface, documentation) are read into
memory up to ``MAX_PARSED_BYTES``, the others stream into place (``bundle.write_files``). A
zip may hold the files at its top level or inside one single top-level folder.
"""

from __future__ import annotations

import io
import lzma
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Iterator, KeysView, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from runyard.errors import InvalidPackage

MAX_FILES = 10_000
MAX_ENTRY_BYTES = 256 << 20  # 256 MiB, one file uncompressed
MAX_TOTAL_BYTES = 1 << 30  # 1 GiB, all files uncompressed
MAX_RATIO = 100  # of an entry's size to its compressed size (zeros deflate 1000:1)
RATIO_FROM_BYTES = 1 << 20  # entries smaller than 1 MiB may be compressed any amount
MAX_PARSED_BYTES = 16 << 20  # a file the server reads whole (metadata.json, tasks.json...)
IGNORED_TOP_FOLDERS = frozenset({"__MACOSX"})  # resource forks that macOS "Compress" adds
_REPACK = "repack the package with plain relative paths (folder/file.py)"
_DRIVE = re.compile(r"^[A-Za-z]:")


class PackageEntries(Mapping[str, bytes]):
    """The files of a package, by relative POSIX path, each read only when asked for:
    ``open`` streams it, ``entries[name]`` reads it whole (at most ``MAX_PARSED_BYTES``)."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def names(self) -> KeysView[str]:
        raise NotImplementedError

    def open(self, name: str) -> IO[bytes]:
        raise NotImplementedError

    def __contains__(self, name: object) -> bool:  # without reading the file
        return name in self.names()

    def __getitem__(self, name: str) -> bytes:
        with self.open(name) as stream:
            data = stream.read(MAX_PARSED_BYTES + 1)
        if len(data) > MAX_PARSED_BYTES:
            raise InvalidPackage(
                f"is larger than {MAX_PARSED_BYTES >> 20} MiB, more than the server reads of "
                "a package file it parses; make it smaller",
                file=self.origin,
                field=name,
            )
        return data

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())


def open_file(files: Mapping[str, bytes], name: str) -> IO[bytes]:
    """A stream of the file ``name`` of a package (held in memory, or read on demand)."""
    return files.open(name) if isinstance(files, PackageEntries) else io.BytesIO(files[name])


@dataclass(frozen=True, kw_only=True)
class PackageFiles:
    """The files of a package: relative POSIX path -> content, and where they came from."""

    files: Mapping[str, bytes]
    origin: str


def read_package(path: Path) -> PackageFiles:
    """Read a package folder or ``.xfp`` zip into memory, refusing anything unsafe."""
    origin = str(path)
    if not path.exists() and not path.is_symlink():
        raise InvalidPackage("does not exist; check the path of the package", file=origin)
    if path.is_dir():
        return PackageFiles(files=_read_folder(path, origin), origin=origin)
    try:
        data = path.read_bytes()  # compressed: at most what an upload may be
    except OSError as e:
        raise InvalidPackage(
            f"cannot be read ({e.strerror}); check its permissions", file=origin
        ) from e
    return read_package_bytes(data, origin)


def read_package_bytes(data: bytes, origin: str) -> PackageFiles:
    """Read an ``.xfp`` zip held in memory; ``origin`` names it in errors."""
    return read_package_stream(io.BytesIO(data), origin)


def read_package_stream(stream: IO[bytes], origin: str) -> PackageFiles:
    """Read an ``.xfp`` zip from a seekable file (an upload spooled to disk); its files are
    read from it on demand, so it must stay open while they are used."""
    return PackageFiles(files=_read_zip(stream, origin), origin=origin)


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


_DATA_ELSEWHERE = "keep large data out of packages (put it in User Data)"


def _too_large(origin: str) -> InvalidPackage:
    return InvalidPackage(
        f"holds more than {MAX_TOTAL_BYTES / 2**30:g} GiB ({MAX_TOTAL_BYTES} bytes) "
        f"uncompressed; {_DATA_ELSEWHERE}",
        file=origin,
    )


def _check_entry_size(origin: str, name: str, size: int) -> None:
    """Refuse one file over ``MAX_ENTRY_BYTES``."""
    if size > MAX_ENTRY_BYTES:
        raise InvalidPackage(
            f"is {size} bytes uncompressed, more than the {MAX_ENTRY_BYTES >> 20} MiB "
            f"({MAX_ENTRY_BYTES} bytes) one file of a package may hold; {_DATA_ELSEWHERE}",
            file=origin,
            field=name,
        )


def _check_ratio(origin: str, info: zipfile.ZipInfo) -> None:
    """Refuse a zip entry of over 1 MiB that its header says is compressed more than
    ``MAX_RATIO`` to one: what a zip bomb's entries are. (An entry that understates its
    size is never inflated past it.)"""
    size, compressed = info.file_size, info.compress_size
    if size > RATIO_FROM_BYTES and size > MAX_RATIO * compressed:
        raise InvalidPackage(
            f"would expand from {compressed} to {size} bytes, more than {MAX_RATIO} times "
            "its compressed size (as a zip bomb does); a package file over "
            f"{RATIO_FROM_BYTES >> 20} MiB may not compress that much",
            file=origin,
            field=info.filename,
        )


# -- folders --------------------------------------------------------------------------------


class FolderEntries(PackageEntries):
    """The files of a package folder, read from disk when asked for."""

    def __init__(self, origin: str, paths: dict[str, str]) -> None:
        super().__init__(origin)
        self._paths = paths  # relative name -> real path

    def names(self) -> KeysView[str]:
        return self._paths.keys()

    def open(self, name: str) -> IO[bytes]:
        return open(self._paths[name], "rb")


def _read_folder(root: Path, origin: str) -> FolderEntries:
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
            size = entry.stat(follow_symlinks=False).st_size
            _check_entry_size(origin, name, size)
            total += size
            if len(found) > MAX_FILES:
                raise _too_many_files(origin)
            if total > MAX_TOTAL_BYTES:
                raise _too_large(origin)
    return FolderEntries(origin, dict(sorted(found)))


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


class ZipEntries(PackageEntries):
    """The files of a zip held in memory, each inflated when asked for, a chunk at a time
    and never past the size its header declares (which the caps were checked against): a
    member that inflates to more or less fails its checksum."""

    def __init__(
        self, origin: str, archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo]
    ) -> None:
        super().__init__(origin)
        self._archive = archive
        self._members = members  # name in the package -> its entry in the zip

    def names(self) -> KeysView[str]:
        return self._members.keys()

    def open(self, name: str) -> IO[bytes]:
        member = self._members[name]
        try:
            raw = _Checked(self._archive.open(member), self.origin, member.filename)
        except _ZIP_ERRORS as e:
            raise _unreadable(self.origin, member.filename, e) from e
        return io.BufferedReader(raw, READ_CHUNK)


_ZIP_ERRORS = (
    zipfile.BadZipFile,
    NotImplementedError,
    RuntimeError,
    EOFError,
    OSError,
    zlib.error,
    lzma.LZMAError,
)


def _unreadable(origin: str, member: str, e: Exception) -> InvalidPackage:
    return InvalidPackage(
        f"cannot be read from the zip ({e}); repack the package without a password, "
        "with standard compression",
        file=origin,
        field=member,
    )


class _Checked(io.RawIOBase):
    """A zip member's stream whose read errors (a bad checksum, a broken deflate stream)
    are refusals of the package naming the member."""

    def __init__(self, stream: IO[bytes], origin: str, member: str) -> None:
        self._stream, self._origin, self._member = stream, origin, member

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._stream.read(len(buffer))
        except _ZIP_ERRORS as e:
            raise _unreadable(self._origin, self._member, e) from e
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._stream.close()
        super().close()


def _read_zip(stream: IO[bytes], origin: str) -> ZipEntries:
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, EOFError, ValueError) as e:
        raise InvalidPackage(
            f"is not a zip file ({e}); a package is a folder or that folder zipped as .xfp",
            file=origin,
        ) from e
    members = _checked_members(archive.infolist(), origin)
    for info in members:  # once the counts and sizes are known to be within the caps
        _check_ratio(origin, info)
    names = _without_top_folder([info.filename for info in members])
    return ZipEntries(origin, archive, dict(zip(names, members, strict=True)))


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
        _check_entry_size(origin, name, info.file_size)
        total += info.file_size
        if len(members) > MAX_FILES:
            raise _too_many_files(origin)
        if total > MAX_TOTAL_BYTES:
            raise _too_large(origin)
    return members


# How much of a member is inflated at a time: reading it whole would inflate all of it at
# once, whatever its header declares (a zip bomb's entry can declare 10 bytes).
READ_CHUNK = 1024 * 1024


def _without_top_folder(names: list[str]) -> list[str]:
    """The names without one single top-level folder that holds every file (but not
    ``metadata.json``)."""
    if not names or "metadata.json" in names:
        return names
    tops = {name.split("/", 1)[0] for name in names}
    if len(tops) != 1 or not all("/" in name for name in names):
        return names
    return [name.split("/", 1)[1] for name in names]
