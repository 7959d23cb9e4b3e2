"""Learned preloads: the fork server of an environment imports what its jobs import.

The jobs of an environment of dependency packages spend most of their start importing what
those packages installed (scikit-image's filters: about 200-300 ms of a job). So the
environment's fork server learns it:

- each child, once its script has run, notes the modules it imported from the environment's
  own site-packages (not the standard library, not the worker's packages, not the task's
  scripts), submodules too (scikit-image loads its submodules lazily: ``skimage`` alone is
  next to nothing), in the environment's ``.runyard-preload`` file, one name a line;
- before its next fork, the fork server imports the names it has not tried yet, so the
  children it forks from then on start with them loaded. A later fork server (the worker
  started again) reads the file at its start.

Names are imported in the fork server only if their package is in the environment's
site-packages, and only after a probe (a child forked for that alone) imported them without
an exception and without starting a thread: forking a process that runs threads is not safe.
A probe tries all new names at once, and each package's alone only if that failed; a package
refused is not tried again by that fork server. Native threads that a library starts
(OpenBLAS's, as numpy does in every fork server) are not seen by the probe, as with numpy.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.util
import os
import signal
import sys
import sysconfig
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

FILE = ".runyard-preload"  # in the environment's folder
PROBE_SECONDS = 120.0  # the longest a probe may import one module


@dataclass
class Learner:
    """The fork server's side (``catch_up``) and the child's (``note``) of learning."""

    file: Path
    site: str  # the environment's site-packages, ending with a separator
    tried: set[str] = field(default_factory=set)  # names imported, failed or refused
    seen: tuple[int, int] = (-1, -1)  # the file's size and time when last read

    @classmethod
    def for_environment(cls) -> Learner | None:
        """The learner of a fork server running in a virtual environment's Python."""
        if sys.prefix == sys.base_prefix:
            return None
        site = os.path.join(sysconfig.get_paths()["purelib"], "")
        return cls(Path(sys.prefix) / FILE, site)

    def catch_up(self) -> list[str]:
        """Import the names noted since the last call (in the fork server, between forks);
        the names imported. Each package's names (``skimage``, ``skimage.filters``, ...) are
        taken or left together: a probe tries all new names at once, and each package on
        its own only if that failed."""
        try:
            stat = self.file.stat()
            if (stat.st_size, stat.st_mtime_ns) == self.seen:
                return []
            self.seen = (stat.st_size, stat.st_mtime_ns)
            noted = self.file.read_text(encoding="utf-8", errors="replace").split()
        except OSError:
            return []
        packages: dict[str, list[str]] = {}
        for name in dict.fromkeys(noted):
            if name in self.tried or name in sys.modules:
                continue
            self.tried.add(name)
            top = name.partition(".")[0]
            if all(part.isidentifier() for part in name.split(".")) and self._installed(top):
                packages.setdefault(top, []).append(name)
        if not packages:
            return []
        names = [name for group in packages.values() for name in group]
        if not probe(names):
            names = [name for group in packages.values() if probe(group) for name in group]
        loaded = []
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:
                continue
            loaded.append(name)
        if loaded:  # keep them out of the collector's reach, as the first preload
            gc.collect()
            gc.freeze()
        return loaded

    def note(self, before: Iterable[str]) -> None:
        """Note the modules of the environment's site-packages that the child imported
        after ``before`` (the fork server's modules), in the order it imported them; in the
        child, at its end."""
        had = set(before) | self.tried  # what the fork server has, or will not take
        new = [
            name
            for name, module in list(sys.modules.items())
            if name not in had and self._from_site(module)
        ]
        if not new:
            return
        with contextlib.suppress(OSError):
            fd = os.open(self.file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, ("\n".join(new) + "\n").encode())
            finally:
                os.close(fd)

    def _from_site(self, module: object) -> bool:
        path = getattr(module, "__file__", None)
        return isinstance(path, str) and path.startswith(self.site)

    def _installed(self, name: str) -> bool:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return False
        origin = spec.origin if spec is not None else None
        if spec is not None and origin in (None, "namespace"):
            origin = next(iter(spec.submodule_search_locations or ()), None)
        return isinstance(origin, str) and origin.startswith(self.site)


def probe(names: list[str]) -> bool:
    """Whether a child forked for it imports ``names`` without an exception and without
    starting a thread (within ``PROBE_SECONDS``)."""
    pid = os.fork()
    if pid == 0:  # the probe never returns
        code = 1
        try:
            for name in names:
                importlib.import_module(name)
            code = 0 if threading.active_count() == 1 else 3
        except BaseException:
            pass
        os._exit(code)
    deadline = time.monotonic() + PROBE_SECONDS
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        if time.monotonic() > deadline:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return False
        time.sleep(0.01)
