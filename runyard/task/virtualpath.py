"""Virtual paths: how task scripts name files and folders of User Data.

A virtual path starts with ``/`` and uses ``/`` between names; a folder's path ends in ``/``
(``/Scans/2026/``), a file's does not (``/Scans/2026/scan.aim``). These functions are pure: they
build and take apart paths, and refuse anything that could leave a folder (``..``, ``.``, also
percent-encoded, once or several times), backslashes, NUL characters and empty names, with a
``ValueError`` that says what is wrong. The server checks again before it touches a file.
"""

from __future__ import annotations

from urllib.parse import unquote

__all__ = [
    "InvalidVirtualPath",
    "check_folder",
    "check_name",
    "check_path",
    "folder_of",
    "join_file",
    "join_folder",
]


MAX_NAME_BYTES = 255  # of one file or folder name, as most file systems allow


class InvalidVirtualPath(ValueError):
    """A virtual path or a name in one that is refused."""


def _name_problem(name: str) -> str | None:
    if not name:
        return "is empty"
    if "/" in name:
        return "contains '/' (give one name, not a path)"
    if "\\" in name:
        return "contains a backslash (virtual paths use '/')"
    if "\0" in name:
        return "contains a NUL character"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"is longer than {MAX_NAME_BYTES} bytes (in UTF-8), more than file systems allow"
    decoded = _fully_unquoted(name)
    if decoded in (".", ".."):
        return "is '.' or '..' (virtual paths cannot leave a folder)"
    if decoded != name and any(c in decoded for c in "/\\\0"):
        return "contains a percent-encoded '/', backslash or NUL"
    return None


def _fully_unquoted(name: str) -> str:
    """``name`` percent-decoded until nothing changes: ``%252e`` -> ``%2e`` -> ``.`` (each
    round that changes it makes it shorter, so this ends)."""
    while (decoded := unquote(name)) != name:
        name = decoded
    return name


def check_name(name: str, what: str = "name") -> str:
    """``name`` if it is one valid file or folder name; else ``InvalidVirtualPath``."""
    problem = _name_problem(name)
    if problem:
        raise InvalidVirtualPath(f"virtual path {what} {name!r} {problem}")
    return name


def check_path(path: str) -> str:
    """``path`` if it is a valid virtual path (of a file or a folder); else
    ``InvalidVirtualPath``."""
    if not path.startswith("/"):
        raise InvalidVirtualPath(
            f"virtual path {path!r} does not start with '/' (like '/Scans/2026/scan.aim')"
        )
    inner = path[1:-1] if path.endswith("/") else path[1:]
    if inner:
        for name in inner.split("/"):
            problem = _name_problem(name)
            if problem:
                shown = "an empty name ('//')" if not name else f"the name {name!r}"
                raise InvalidVirtualPath(f"virtual path {path!r}: {shown} {problem}")
    return path


def check_folder(folder: str) -> str:
    """``folder`` if it is a valid virtual path of a folder (ending in ``/``)."""
    check_path(folder)
    if not folder.endswith("/"):
        raise InvalidVirtualPath(
            f"virtual path {folder!r} is not a folder: folder paths end in '/' "
            f"(like {folder + '/'!r})"
        )
    return folder


def join_file(folder: str, name: str) -> str:
    """The path of the file ``name`` in ``folder``: ``join_file("/Scans/", "a.aim")`` is
    ``"/Scans/a.aim"``."""
    return check_folder(folder) + check_name(name, "file name")


def join_folder(folder: str, name: str) -> str:
    """The path of the subfolder ``name`` of ``folder``, ending in ``/``:
    ``join_folder("/Scans/", "2026")`` is ``"/Scans/2026/"``. A single trailing ``/`` on
    ``name`` is accepted (``"2026/"``)."""
    bare = name[:-1] if name.endswith("/") else name
    return check_folder(folder) + check_name(bare, "folder name") + "/"


def folder_of(path: str) -> str:
    """The folder part of a path, up to and including its last ``/``: the folder containing a
    file (``"/Scans/s1/image.aim"`` -> ``"/Scans/s1/"``), and a folder path itself
    (``"/Scans/s1/"`` -> ``"/Scans/s1/"``), as ``os.path.dirname`` does."""
    check_path(path)
    return path[: path.rindex("/") + 1]
