"""The server process's memory: fewer malloc arenas, so that what a large request frees
returns to the system instead of staying resident in a thread's own arena.

glibc's malloc gives each thread that allocates concurrently an arena of its own (up to
eight per core); the server answers requests in a pool of threads, so after a few large
requests (a spawn of 10,000 jobs makes about half a million objects) each thread's arena
holds tens of megabytes that it has freed but cannot hand back. Measured in
docs/performance.md ("Load"). Elsewhere than glibc nothing changes."""

from __future__ import annotations

import ctypes
import os

M_ARENA_MAX = -8  # mallopt's parameter (malloc.h)
ARENAS = 2  # what MALLOC_ARENA_MAX=2 sets, the usual setting for threaded Python servers


def fewer_malloc_arenas() -> bool:
    """Limit glibc's malloc to ``ARENAS`` arenas (before the server's threads start), unless
    MALLOC_ARENA_MAX says otherwise; whether the limit was set."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    libc = _glibc()
    return libc is not None and libc.mallopt(M_ARENA_MAX, ARENAS) == 1


def _glibc() -> ctypes.CDLL | None:
    """The C library the process runs with (its own symbols), if it is glibc."""
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt") else None
