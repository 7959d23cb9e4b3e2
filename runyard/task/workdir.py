"""A job's working folder: new file paths in it that never collide, subfolders, cleanup.

    from runyard.task.workdir import WorkingDirectory

    work = WorkingDirectory(job.working_dir)
    seg = work.create_related_path("/Scans/s1/SCAN.AIM;1", "_seg.omni")   # .../SCAN_seg.omni
    with work.subdir("slices"):
        png = work.create_temp_path("slice.png")                          # .../slices/slice.png

Every path handed out is new: a name already on disk, or already handed out, gets a number
(``SCAN_seg.omni``, then ``SCAN_seg_2.omni``). Nothing is created but the folders.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

__all__ = ["WorkingDirectory", "related_name"]


def related_name(path: str | os.PathLike[str], postfix: str) -> str:
    """The last name of ``path`` without its last suffix, plus ``postfix``:
    ``("/x/scan.aim", "_seg.omni")`` -> ``"scan_seg.omni"``, ``("SCAN.ISQ;1", ".omni")`` ->
    ``"SCAN.omni"`` (an OpenVMS version goes with the extension). ``/`` and ``\\`` both separate
    folders. A ``postfix`` with a folder part, or no usable name, raises ``ValueError``."""
    if any(c in postfix for c in "/\\\0"):
        raise ValueError(f"postfix {postfix!r} must not contain '/', '\\' or NUL")
    name = PurePosixPath(os.fspath(path).replace("\\", "/")).name
    related = (PurePosixPath(name).stem if name else "") + postfix
    if related in ("", ".", "..") or "\0" in related:
        raise ValueError(f"no file name can be made from {os.fspath(path)!r} and {postfix!r}")
    return related


def _plain_name(name: str, what: str) -> str:
    if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise ValueError(f"{what} {name!r} is not a plain file name like 'table.csv'")
    return name


class WorkingDirectory:
    """The folder ``path`` (it must exist), handing out new paths inside it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).absolute()
        self._current = self.path  # where new paths go: the folder or a ``subdir``
        self._given: set[Path] = set()

    @classmethod
    def create(
        cls, prefix: str = "tmp-", parent: str | os.PathLike[str] | None = None
    ) -> WorkingDirectory:
        """A fresh folder named ``prefix`` plus random letters inside ``parent`` (default: the
        current folder, which in a job is the job's working folder)."""
        base = Path(parent) if parent is not None else Path.cwd()
        return cls(tempfile.mkdtemp(prefix=prefix, dir=base))

    def create_temp_path(self, filename: str) -> Path:
        """A new path named ``filename`` (numbered if taken) in the current (sub)folder."""
        return self._new(_plain_name(filename, "filename"))

    def create_related_path(self, path: str | os.PathLike[str], postfix: str) -> Path:
        """A new path named after ``path`` (``related_name``) in the current (sub)folder."""
        return self._new(related_name(path, postfix))

    def _new(self, name: str) -> Path:
        candidate = self._current / name
        stem, dot, suffix = name.partition(".")
        number = 1
        while candidate in self._given or os.path.lexists(candidate):
            number += 1
            candidate = self._current / f"{stem}_{number}{dot}{suffix}"
        self._given.add(candidate)
        return candidate

    @contextmanager
    def subdir(self, name: str, max_name_len: int = 8) -> Iterator[Path]:
        """Within the ``with`` block, new paths go into a new subfolder of the current one,
        named ``name`` cut to ``max_name_len`` characters (numbered if taken); gives it."""
        if max_name_len < 1:
            raise ValueError(f"max_name_len must be at least 1, not {max_name_len}")
        folder = self._new(_plain_name(name, "subfolder name")[:max_name_len])
        folder.mkdir()
        outer, self._current = self._current, folder
        try:
            yield folder
        finally:
            self._current = outer

    def is_under(self, path: str | os.PathLike[str]) -> bool:
        """Whether ``path`` is this folder or inside it (``..`` and symlinks resolved)."""
        return Path(path).resolve().is_relative_to(self.path.resolve())

    def remove(self) -> None:
        """Delete the folder with everything in it."""
        shutil.rmtree(self.path, ignore_errors=True)

    def __fspath__(self) -> str:
        return str(self.path)

    def __truediv__(self, name: str | os.PathLike[str]) -> Path:
        return self.path / name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"
