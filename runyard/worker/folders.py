"""Working folders: each job runs in a folder of its own, ``DATA_DIR/jobs/job-SERIAL-XXXXXXXX``,
with its ``job.json``, its ``job.log`` and, once the script has ended, its ``result.json``.

Making and deleting folders and files is what a worker spent most CPU on per job: on ext4
without a journal, finding a free inode for a new file skips every inode deleted in the last
30 s, so the more jobs per second, the dearer each new file. A folder is therefore used again
when its job ended Done and left in it nothing but these files, as regular files of their own
(no link, no folder, nothing the script wrote): its ``result.json`` is deleted, its log
emptied, and it waits as a **spare** (renamed into a private folder of the worker) until the
next job's ``new`` renames it to that job's name and writes that job's ``job.json`` over the
old one. So a job never sees a file of an earlier job; any other folder is deleted whole, as
are spares beyond ``max_spares`` and, when the worker stops, the spares.

Deleting happens off the jobs' path: ``discard`` queues a folder, the worker's cleaner thread
calls ``empty_trash``. A Failed job's folder is kept for inspection: it never comes here.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import threading
from collections import deque
from pathlib import Path
from typing import Any

JOB_FILES = frozenset({"job.json", "job.log", "result.json"})  # what the worker's own steps make


class WorkingFolders:
    """The working folders of one worker's jobs under ``root`` (``DATA_DIR/jobs``)."""

    def __init__(self, root: Path, *, max_spares: int) -> None:
        self.root = root
        self.max_spares = max_spares
        self._lock = threading.Lock()
        # Under _spare_root, named by their folders' suffix; with the size of their job.json.
        self._spares: list[tuple[str, int]] = []
        self._spare_root: str | None = None
        self._trash: deque[Path] = deque()
        self._root_made = False

    def new(self, serial: int, job: dict[str, Any]) -> Path:
        """A working folder for job ``serial``, with the job (``job.json``) in it: a spare
        renamed, or a new folder."""
        data = json.dumps(job).encode()
        with self._lock:
            suffix, old_size = self._spares.pop() if self._spares else ("", 0)
            spare_root = self._spare_root
        if suffix and spare_root is not None:
            spare = os.path.join(spare_root, suffix)
            workdir = os.path.join(self.root, f"job-{serial}-{suffix}")
            try:
                # The suffix is the spare's own (mkdtemp made it): the name is not taken,
                # and were it, by a folder with anything in it, the rename would fail.
                os.rename(spare, workdir)
            except OSError:
                self.discard(Path(spare))
            else:
                try:
                    _write(os.path.join(workdir, "job.json"), data, cut=len(data) < old_size)
                    return Path(workdir)
                except OSError:
                    self.discard(Path(workdir))
        if not self._root_made:
            self.root.mkdir(parents=True, exist_ok=True)
            self._root_made = True
        workdir = tempfile.mkdtemp(prefix=f"job-{serial}-", dir=self.root)
        _write(os.path.join(workdir, "job.json"), data, cut=False)
        return Path(workdir)

    def recycle(self, workdir: Path) -> None:
        """The folder of a job that ended Done, its processes gone: a spare if it holds
        nothing but the job's own files, else deleted."""
        with self._lock:
            full = len(self._spares) >= self.max_spares
        path = os.fspath(workdir)
        suffix = path.rpartition("-")[2]  # mkdtemp's names have no "-"
        files = None if full or not suffix else job_files(path)
        if files is None:
            self.discard(workdir)
            return
        try:
            if "result.json" in files:
                os.unlink(os.path.join(path, "result.json"))
            if "job.log" in files and files["job.log"].st_size:
                _empty(os.path.join(path, "job.log"))
            os.rename(path, os.path.join(self._spares_folder(), suffix))
        except OSError:
            self.discard(workdir)
            return
        job = files.get("job.json")
        with self._lock:
            self._spares.append((suffix, job.st_size if job else 0))

    def discard(self, workdir: Path) -> None:
        """Delete the folder (on the cleaner's next round)."""
        self._trash.append(workdir)

    def empty_trash(self) -> None:
        while True:
            try:
                path = self._trash.popleft()
            except IndexError:
                return
            shutil.rmtree(path, ignore_errors=True)

    def close(self) -> None:
        """The worker stops: delete the discarded folders and the spares."""
        with self._lock:
            spare_root, self._spare_root, self._spares = self._spare_root, None, []
        self.empty_trash()
        if spare_root is not None:
            shutil.rmtree(spare_root, ignore_errors=True)

    def _spares_folder(self) -> str:
        with self._lock:
            if self._spare_root is None:
                self._spare_root = tempfile.mkdtemp(prefix=".spares-", dir=self.root)
            return self._spare_root


def job_files(path: str) -> dict[str, os.stat_result] | None:
    """The job files in the folder (ours, as ``mkdtemp`` made it), if it holds nothing else
    and each is a regular file of one name that its owner may read and write; else None."""
    try:
        info = os.lstat(path)
        if not stat.S_ISDIR(info.st_mode) or stat.S_IMODE(info.st_mode) != 0o700:
            return None
        files = {}
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.name not in JOB_FILES:
                    return None
                info = entry.stat(follow_symlinks=False)
                if (
                    not stat.S_ISREG(info.st_mode)
                    or info.st_nlink != 1
                    or info.st_mode & 0o600 != 0o600
                ):
                    return None
                files[entry.name] = info
    except OSError:
        return None
    return files


def _write(path: str, data: bytes, *, cut: bool) -> None:
    """Write the file, over an old one of that name if there is one (never through a link),
    cutting it to the new length if it was longer (``cut``). The old bytes are written over,
    not truncated first: the file's block is not freed and allocated again (a freed block
    costs a discard request to the disk on a file system mounted with ``discard``)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if cut:
            os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def _empty(path: str) -> None:
    """Empty the file (never through a link)."""
    os.close(os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK))
